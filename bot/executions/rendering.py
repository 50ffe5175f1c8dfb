"""An execution's message in its step's thread: posted the first time, updated in place afterwards (keyed
`execution:<id>`), from the stored row or, while it runs, from its live progress."""

from __future__ import annotations

import logging

from actions.progress import ProgressSnapshot
from bot.core.services import Services
from bot.executions.requests import Requests
from bot.executions.views import ExecutionView, execution_blocks, execution_text
from bot.runbook.procedure import procedure_for
from bot.store.models import Execution, Incident

log = logging.getLogger(__name__)


class Renderer:
    def __init__(self, svc: Services, requests: Requests) -> None:
        self.svc = svc
        self.requests = requests

    async def view(self, row: Execution, snap: ProgressSnapshot | None = None) -> ExecutionView:
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, row.incident_id)
        assert incident is not None
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        gate_item = ""
        try:
            step = procedure.step(row.step_id)
            label, owner = f"Step {step.number}: {step.title}", step.owner
            task = next((t for t in step.tasks if t.id == row.task_id), None)
            gate = task.gate_for(row.action_id) if task is not None and task.action != row.action_id else None
            gate_item = gate.item if gate is not None else ""
        except KeyError:
            label, owner = row.step_id, None
        deciders = ""
        if owner and (row.data.get("traffic_result") in ("halted", "paused") or gate_item):
            title = self.svc.runbook.role(owner).title
            people = await self.svc.roles.members(owner, row.incident_id)
            deciders = f"{title}: " + (", ".join(f"<@{u}>" for u in people) or "_nobody on the roster_")
        approval = ""
        if row.state == "requested":
            action = self.svc.runbook.action(row.action_id)
            if action.approval:
                titles = [self.svc.runbook.role(r).title for r in action.approval.roles]
                joiner = " + " if action.approval.all_of else " or "
                approval = f":lock: Waiting for approval by {joiner.join(titles)}."
        return ExecutionView(execution=row, action_title=self.requests.title(row), step_label=label,
                             is_drill=incident.is_drill, last_lines=snap.last_lines if snap else (),
                             elapsed_s=snap.elapsed_s if snap else None, deciders=deciders, approval_note=approval,
                             gate_item=gate_item)

    async def render(self, execution_id: str, snap: ProgressSnapshot | None = None,
                     live: Execution | None = None) -> None:
        """Post the execution's message in its step's thread the first time, update it afterwards.
        `snap` is live progress (last lines, elapsed) and `live` the running row it belongs to (shown as held
        in memory); without them the stored row is shown."""
        row = live if (live is not None and snap is not None) else await self.requests.row(execution_id)
        view = await self.view(row, snap)
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, row.incident_id)
        if incident is None or incident.channel_id is None:
            return
        ref = await self.svc.slack.message_ref(row.incident_id, f"step:{row.step_id}") or \
            await self.svc.slack.message_ref(row.incident_id, "header")
        try:
            await self.svc.slack.put_message(row.incident_id, f"execution:{row.id}", incident.channel_id,
                                             execution_text(view), execution_blocks(view),
                                             thread_ts=ref.ts if ref else None)
        except Exception:
            log.warning("could not show execution %s in Slack", row.id, exc_info=True)
