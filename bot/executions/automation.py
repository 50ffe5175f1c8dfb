"""What the bot starts by itself, on events: a phase's `auto` tasks and measurable metric gates when it starts,
the tasks whose `start_when` just opened (the decision approved, an action succeeded), the scenario's steps up
to the rollback once it is approved, and the items another run of the same action already proved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from bot.core import done_before
from bot.core.errors import Refused
from bot.core.room import Room
from bot.core.services import Services
from bot.executions.requests import AUTO, Requests
from bot.executions.scenarios import ScenarioRunner
from bot.runbook.model import StartWhen, item_id
from bot.runbook.prometheus import prometheus_base
from bot.steps.checklists import Checklists

log = logging.getLogger(__name__)


class Request(Protocol):
    """Executions.request: attempt 1 of an action, through its gates (Refused says why not)."""

    async def __call__(self, incident_id: str, step_id: str, task_id: str | None, action_id: str, user: str, *,
                      auto: bool = False) -> Any: ...


class Automation:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists, requests: Requests,
                 scenarios: ScenarioRunner, request: Request) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self.requests = requests
        self.scenarios = scenarios
        self.request = request

    async def on_phase_started(self, incident_id: str, phase_id: str | None = None, **_: Any) -> None:
        if phase_id is None:
            return
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        phase = snap.procedure.phase(phase_id)
        for step in phase.steps:
            for task in step.tasks:
                starting = [task.action] if task.auto and task.action else []
                starting += [g.action for g in task.gates if g.start_when is None and self.measurable(g.action)]
                for action_id in starting:
                    try:
                        await self.request(incident_id, step.id, task.id, action_id, AUTO, auto=True)
                    except Refused as exc:
                        log.info("automatic %s not started: %s", action_id, exc)
        if phase.replaced_by_scenario and snap.procedure.scenario is not None:
            await self.scenarios.offer(incident_id, phase.id)

    async def on_decided(self, incident_id: str, decision: str, **_: Any) -> None:
        if decision == "approved":
            await self._offer_rollback_early(incident_id)
            await self._start_when(incident_id, lambda w: w.decision == "approved")

    async def _offer_rollback_early(self, incident_id: str) -> None:
        """The scenario's steps up to its rollback (the first action with `requires`) are posted the moment the
        rollback is approved, Run live: what guards the rollback is its requirement (the snapshot), not the
        paperwork of the steps before it. Keyed messages: posting twice updates in place."""
        snap = await self.svc.snapshot(incident_id)
        phase = next((p for p in snap.procedure.phases if p.replaced_by_scenario), None)
        if phase is None or snap.procedure.scenario is None or snap.incident.phase_id == phase.id:
            return
        rollback = next((i for i, step in enumerate(phase.steps) if any(
            t.action and self.svc.runbook.action(t.action).requires for t in step.tasks)), None)
        if rollback is None:
            return
        for step in phase.steps[:rollback + 1]:
            await self.warroom.post_step(snap, step.id)

    async def on_finished(self, incident_id: str, action_id: str, outcome: str, **_: Any) -> None:
        if outcome == "succeeded":
            await self._tick_done_before(incident_id, action_id)
            await self._start_when(incident_id, lambda w: w.succeeded == action_id)

    async def _tick_done_before(self, incident_id: str, action_id: str) -> None:
        """Other tasks running the same action are done by this success (traffic already at 100 %): their items
        tick themselves, as the run's own task's do. The event is redelivered until this succeeds."""
        action = self.svc.runbook.action(action_id)
        rows = await self.requests.earlier_runs(incident_id, action)
        if not rows:
            return
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        bot = self.svc.slack.bot_user_id or AUTO
        for (step_id, task_id), row in done_before.done_tasks(snap.procedure, rows).items():
            state = snap.steps.get(step_id)
            if (step_id, task_id) == (row.step_id, row.task_id) or state is None or state.status not in ("pending", "active"):
                continue
            task = next(t for t in snap.procedure.step(step_id).tasks if t.id == task_id)
            try:
                await self.checklists.tick(incident_id, step_id, task_id,
                                           {item_id(task_id, i) for i in range(len(task.items))}, bot,
                                           authorize=False)
            except Refused as exc:  # the step closed meanwhile: nothing left to tick
                log.info("not ticking %s for %s: %s", task_id, row.id, exc)
                continue
            await self.warroom.refresh(incident_id, steps=[step_id])

    async def _start_when(self, incident_id: str, opened: Callable[[StartWhen], bool]) -> None:
        """Tasks marked `start_when` whose gate just opened start by themselves, even before their step starts
        (the fastest safe path: the snapshot runs the moment the rollback is approved). Attempt 1 has one
        idempotency key, so a repeated event starts nothing twice."""
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        for step in snap.procedure.steps():
            for task in step.tasks:
                starting = [task.action] if task.action and task.start_when is not None and opened(task.start_when) \
                    else []
                starting += [g.action for g in task.gates
                             if g.start_when is not None and opened(g.start_when) and self.measurable(g.action)]
                for action_id in starting:
                    try:
                        await self.request(incident_id, step.id, task.id, action_id, AUTO, auto=True)
                    except Refused as exc:
                        log.info("automatic %s not started: %s", action_id, exc)

    def measurable(self, action_id: str) -> bool:
        """A metric gate runs by itself only where a Prometheus is configured; elsewhere the step says the item
        is a person's call (bot/steps/views.py), and nothing runs."""
        return prometheus_base(self.svc.runbook.action(action_id), self.requests.env) is not None
