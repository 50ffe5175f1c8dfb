"""Running a launched execution on this replica: approved -> running under its lease, the action through
actions/ (or a staged traffic restore), its progress in the step's thread, and its result recorded once, with
what follows from it (the checklist, the events, a question for the deciders).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from actions.progress import ProgressSnapshot, ProgressThrottle
from actions.result import ActionResult, Outcome
from actions.runner import ActionRunner
from bot.core import drill_guard, timeline
from bot.core.clock import utc
from bot.core.errors import Refused
from bot.core.events import Outbound
from bot.core.room import Room
from bot.core.services import Services
from bot.executions import store
from bot.executions.progress import ProgressPoster
from bot.executions.rendering import Renderer
from bot.executions.requests import AUTO, Context, Requests
from bot.executions.specs import Prepared, check_spec, prometheus_spec, stage_spec
from bot.executions.traffic import StagedRun
from bot.executions.views import command_line, gate_question, gate_unproven, outcome_phrase, traffic_decision_text
from bot.runbook.model import item_id
from bot.runbook.prometheus import prometheus_base
from bot.steps.checklists import Checklists
from bot.store.models import Execution

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=30)
# Background work is spawned by the owner of all of this module's tasks (Executions.spawn), so idle() sees it.
Spawn = Callable[[Coroutine[Any, Any, None], str], asyncio.Task[Any]]


@dataclass
class Live:
    """An execution this replica is running."""

    row: Execution
    context: Context
    throttle: ProgressThrottle
    poster: ProgressPoster
    timeout_at: datetime
    prepared: Prepared | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    reason: str | None = None  # why it is being stopped: cancel | timeout | shutdown
    staged: StagedRun | None = None
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class LiveRuns:
    """The executions running here (`live`, by id), from their launch to their recorded result."""

    def __init__(self, svc: Services, warroom: Room, checklists: Checklists, requests: Requests,
                 rendering: Renderer, runner: ActionRunner, spawn: Spawn) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self.requests = requests
        self.rendering = rendering
        self.runner = runner
        self.spawn = spawn
        self.live: dict[str, Live] = {}

    async def launch(self, execution_id: str) -> bool:
        """approved -> running under this replica's lease, then run it in the background. Once across replicas."""
        row = await self.requests.row(execution_id)
        if row.state != "approved" or execution_id in self.live:
            return False
        ctx = await self.requests.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        now = self.svc.clock.now()
        poster = ProgressPoster(lambda snap: self._show(execution_id, snap))
        throttle = ProgressThrottle(poster.push, interval_s=1.0, keep_lines=5, monotonic=self.svc.clock.monotonic)
        live = Live(row=row, context=ctx, throttle=throttle, poster=poster,
                    timeout_at=now + timedelta(seconds=ctx.action.timeout_seconds))
        self.live[execution_id] = live  # before the UPDATE, so a concurrent sweep counts it as ours
        try:
            async with self.svc.db.session() as session:
                ok = await store.transition(session, execution_id, ("approved",), "running", started_at=now,
                                            lease_owner=self.svc.settings.replica_id, lease_expires_at=now + LEASE)
                if ok:
                    timeline.record(session, row.incident_id, now, "execution_started",
                                    f"{ctx.action.title} started" + (" (dry run)" if row.dry_run else ""),
                                    actor=row.requested_by, execution=row.id)
        except BaseException:
            self.live.pop(execution_id, None)
            raise
        if not ok:
            self.live.pop(execution_id, None)
            return False
        row.state, row.started_at, row.lease_owner = "running", now, self.svc.settings.replica_id
        live.task = self.spawn(self._run(live), f"execution:{execution_id}")
        return True

    async def _show(self, execution_id: str, snap: ProgressSnapshot) -> None:
        """The poster's render: progress of the row held in memory while it runs, the stored row after."""
        live = self.live.get(execution_id)
        await self.rendering.render(execution_id, snap, live.row if live is not None else None)

    async def _run(self, live: Live) -> None:
        row, ctx = live.row, live.context
        result: ActionResult
        data: dict[str, Any] = {}
        try:
            await self.rendering.render(row.id)
            live.poster.start()
            live.prepared = self.requests.prepare(ctx, row.data.get("values") or {}, execution_id=row.id)
            if not row.dry_run and not await drill_guard.reaches_outside(self.svc, ctx.incident, "action",
                                                                           ctx.action.title):
                row.dry_run = True  # a drill's run is a dry run, whatever asked for it (held in memory only)
            if ctx.action.stages:
                result, data = await self._run_staged(live, live.prepared)
            elif row.dry_run:
                result = await self.runner.run(row.id, live.prepared.spec, secrets=live.prepared.secrets, dry_run=True)
            else:
                result = await self.runner.run(row.id, live.prepared.spec, on_line=live.throttle.on_line,
                                               secrets=live.prepared.secrets)
        except Refused as exc:  # the values no longer resolve (a default file went away): nothing ran
            result = ActionResult(Outcome.FAILED, None, 0.0, "", error=str(exc))
        except Exception as exc:
            log.exception("execution %s crashed", row.id)
            result = ActionResult(Outcome.FAILED, None, 0.0, "", error=f"internal error: {type(exc).__name__}")
        try:
            await live.throttle.finish()
            await live.poster.close()
            await self._finish(live, result, data)
        finally:
            self.live.pop(row.id, None)
            live.done.set()

    async def _run_staged(self, live: Live, prepared: Prepared) -> tuple[ActionResult, dict[str, Any]]:
        action, row = live.context.action, live.row
        env, base, max_output_bytes = self.requests.env, self.requests.base, self.requests.max_output_bytes
        plan = row.data.get("plan") or {"mode": "stages", "from": action.stages[0]}
        drill = live.context.incident.is_drill
        check_action = self.svc.runbook.action(action.check) if action.check else None
        check = check_spec(check_action, env) if check_action else None
        gate_actions = [self.svc.runbook.action(g) for g in action.stage_gates]
        measured = [g for g in gate_actions if prometheus_base(g, env)]
        gates = [prometheus_spec(g, {}, env) for g in measured]
        unmeasured = [g.title for g in gate_actions if g not in measured]
        notes = [f"[rollbot] no Prometheus is configured: {' and '.join(unmeasured)} is not measured at any stage; "
                 "judging it at each stage is a person's call"] if unmeasured else []

        def spec(percent: int) -> Any:
            return stage_spec(prepared, base, percent, drill=drill, max_output_bytes=max_output_bytes,
                              env_extra={"ROLLBOT_INCIDENT_ID": row.incident_id, "ROLLBOT_EXECUTION_ID": row.id})[0]

        stages = [s for s in action.stages if s >= int(plan.get("from", action.stages[0]))]
        if row.dry_run:
            after = [c.plan().command for c in [*([check] if check else []), *gates]]
            plans = [command_line(spec(p).argv) + "".join(f"  then  {c}" for c in after) for p in stages]
            if plan.get("mode") == "rollback":
                plans = [command_line(spec(int(plan["to"])).argv)]
            line = "\n".join([*notes, "[rollbot] dry run, would run: " + " ; ".join(plans)])
            return ActionResult(Outcome.DRY_RUN, None, 0.0, line), {"plans": plans}
        staged = StagedRun(self.runner, row.id, spec, check, secrets=prepared.secrets, on_line=live.throttle.on_line,
                           cancel=live.cancel, monotonic=self.svc.clock.monotonic, max_output_bytes=max_output_bytes,
                           gates=gates, notes=notes)
        live.staged = staged
        if plan.get("mode") == "rollback":
            return await staged.roll_back(int(plan["to"]), plan.get("resume_from"))
        result, data = await staged.run(stages, action.stages)
        return result, {**data, "stage_gates": [g.id for g in measured]}  # what a success proves (validation)

    def stop(self, live: Live, reason: str) -> None:
        """Stop a run here (cancel | timeout | shutdown): its process group goes; _finish records why."""
        if live.reason is None:
            live.reason = reason
        live.cancel.set()
        if live.staged is not None:
            live.staged.cancel()
        else:
            self.runner.cancel(live.row.id)

    async def _finish(self, live: Live, result: ActionResult, data: dict[str, Any]) -> None:
        row, ctx = live.row, live.context
        state = {Outcome.SUCCEEDED: "succeeded", Outcome.FAILED: "failed", Outcome.TIMED_OUT: "timed_out",
                 Outcome.CANCELLED: "cancelled", Outcome.DRY_RUN: "succeeded"}[result.outcome]
        detail = result.error
        if result.outcome is Outcome.CANCELLED or live.reason is not None:
            if live.reason == "timeout":
                state, detail = "timed_out", f"no result within {ctx.action.timeout_seconds:g}s: process group stopped"
            elif live.reason == "shutdown":
                state, detail = "interrupted", "the bot was stopping: process group stopped"
            elif live.reason == "cancel":
                state = "cancelled"
        if result.outcome is Outcome.DRY_RUN and result.plan is not None and not data.get("plans"):
            data["plans"] = []
        now = self.svc.clock.now()
        output = result.output
        started = row.started_at or now
        took = result.duration_s if result.duration_s else (now - utc(started)).total_seconds()
        new_data = {**row.data, **data}
        async with self.svc.db.session() as session:
            # Our own process finished: the truth wins even over an 'interrupted' a stale lease earned us.
            ok = await store.transition(
                session, row.id, ("running", "interrupted"), state, store.owned_by(self.svc.settings.replica_id),
                finished_at=now, exit_code=result.exit_code, duration_s=took, output=output,
                truncated=result.truncated, detail=detail, lease_expires_at=None, data=new_data)
            if ok:
                row.state, row.finished_at, row.exit_code, row.duration_s = state, now, result.exit_code, took
                row.output, row.truncated, row.detail, row.data = output, result.truncated, detail, new_data
                timeline.record(session, row.incident_id, now, "execution_finished",
                                f"{ctx.action.title}: {outcome_phrase(row)}", actor=row.requested_by,
                                execution=row.id, state=state, exit_code=result.exit_code)
                owed = await self._owed(session, row, ctx)  # the events, in the transaction of the result
        if not ok:
            log.warning("execution %s changed under us; result not recorded", row.id)
            return
        await self.rendering.render(row.id)
        await self._after(row, ctx, owed)

    async def _owed(self, session: Any, row: Execution, ctx: Context) -> tuple[Outbound | None, Outbound]:
        counts = row.state == "succeeded" and (not row.dry_run or ctx.incident.is_drill)
        diverted = (await self.svc.events.emit("moment", session, change=f"{row.incident_id}:traffic_diverted",
                                               incident_id=row.incident_id, moment="traffic_diverted")
                    if counts and "maintenance" in row.action_id else None)
        outcome = "dry_run" if row.dry_run and row.state == "succeeded" else row.state
        finished = await self.svc.events.emit("execution_finished", session, change=f"{row.id}:{row.state}",
                                              incident_id=row.incident_id, execution_id=row.id,
                                              action_id=row.action_id, outcome=outcome)
        return diverted, finished

    async def _after(self, row: Execution, ctx: Context, owed: tuple[Outbound | None, Outbound]) -> None:
        """Effects of a result: the checklist, the moment for comms, the event, a question for the deciders."""
        counts = row.state == "succeeded" and (not row.dry_run or ctx.incident.is_drill)
        if counts and row.data.get("mode") != "rollback":
            await self._tick_task(row, ctx)
        diverted, finished = owed
        if diverted is not None:
            await self.svc.events.deliver(diverted)
        if row.data.get("traffic_result") in ("halted", "paused"):
            await self._ask_deciders(row)
        elif gate_unproven(view := await self.rendering.view(row)):  # no data pauses the item and asks its owner
            ref = await self.svc.slack.message_ref(row.incident_id, f"execution:{row.id}")
            if ref is not None:
                await self.svc.slack.reply(ref.channel, ref.thread_ts or ref.ts, gate_question(view),
                                           owed=(row.incident_id, f"reply:gate_question:{row.id}"))
        await self.svc.events.deliver(finished)

    async def _tick_task(self, row: Execution, ctx: Context) -> None:
        gate = ctx.task.gate_for(row.action_id) if row.action_id != ctx.task.action else None
        if gate is not None:  # a metric gate proves its one item, not the whole task
            items = {item_id(ctx.task.id, ctx.task.items.index(gate.item))}
        else:
            items = {item_id(ctx.task.id, i) for i in range(len(ctx.task.items))}
        actor = row.requested_by if row.requested_by != AUTO else (self.svc.slack.bot_user_id or AUTO)
        try:
            await self.checklists.tick(row.incident_id, row.step_id, ctx.task.id, items, actor, authorize=False,
                                       only=items if gate is not None else None)
            await self.warroom.refresh(row.incident_id, steps=[row.step_id])
        except Refused as exc:  # the step was closed meanwhile: nothing left to tick
            log.info("not ticking %s: %s", row.id, exc)

    async def _ask_deciders(self, row: Execution) -> None:
        view = await self.rendering.view(row)
        ref = await self.svc.slack.message_ref(row.incident_id, f"execution:{row.id}")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.thread_ts or ref.ts, traffic_decision_text(view),
                                       owed=(row.incident_id, f"reply:traffic_question:{row.id}"))
