"""Running runbook actions from Slack: once, after their gates, in plain sight, and never twice by accident.

A request inserts an Execution row under its idempotency key (incident:step:action:attempt), so a double click
or a second replica gets the same row. Every move of its state is a conditional UPDATE. A running execution
holds a lease (renewed by this replica's heartbeat); one whose lease runs out is marked interrupted, with a
Retry button, and never re-run by itself. The action itself runs through actions/ (process groups, redaction,
output cap); its progress message in the step's thread is updated at most once a second.

Executions is what the rest of the bot calls: requests and what people do to a run are here; the checks
(requests.py), the running (runs.py), the heartbeat (heartbeat.py), what starts by itself (automation.py) and
the run's message (rendering.py) are its collaborators.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

from actions.params import format_value
from actions.runner import ActionRunner
from actions.shell import enable_subreaper
from bot.core import timeline
from bot.core.errors import Refused
from bot.core.room import Room
from bot.core.services import Services
from bot.core.tasks import TaskSet
from bot.executions import store
from bot.executions.automation import Automation
from bot.executions.heartbeat import Heartbeat
from bot.executions.rendering import Renderer
from bot.executions.requests import Context, Requested, Requests, needs_approval
from bot.executions.runs import LiveRuns
from bot.executions.scenarios import ScenarioRunner
from bot.executions.specs import Prepared
from bot.executions.views import command_line, outcome_phrase
from bot.steps.checklists import Checklists
from bot.store.models import Execution

STOP_WAIT_SECONDS = 12.0  # SIGTERM, the process groups' grace, SIGKILL, and recording each result
TRAFFIC_CHOICES = ("rollback", "retry", "continue")


class Executions:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists,
                 env: Mapping[str, str] | None = None) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self.requests = Requests(svc, env)
        self.runner = ActionRunner(redactor=self.requests.redactor, monotonic=svc.clock.monotonic)
        self.rendering = Renderer(svc, self.requests)
        self.tasks = TaskSet("execution task")  # runs and scenario steps, awaited by idle() and stop()
        self.runs = LiveRuns(svc, warroom, checklists, self.requests, self.rendering, self.runner, self.spawn)
        self.heartbeat = Heartbeat(svc, self.runs, self.requests, self.rendering)
        self.scenarios = ScenarioRunner(svc, self)
        self.automation = Automation(svc, warroom, checklists, self.requests, self.scenarios, self.request)
        # The listener names are stored in outbox rows: they stay as they are whoever handles the event.
        svc.events.on("phase_started", self.automation.on_phase_started, name="executions.on_phase_started")
        svc.events.on("decided", self.automation.on_decided, name="executions.on_decided")
        svc.events.on("execution_finished", self.automation.on_finished, name="executions.on_finished")
        svc.events.on("action_approved", self._on_approved, name="executions.on_approved")
        svc.events.on("action_declined", self._on_declined, name="executions.on_declined")

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """At start-up: mark executions whose lease expired as interrupted, then keep the heartbeat going."""
        enable_subreaper()  # a killed script's orphaned grandchildren come to us to be reaped
        await self.heartbeat.start()

    async def stop(self) -> None:
        """Stop what runs here: each is recorded as interrupted (the bot stopped), never left 'running'."""
        await self.heartbeat.stop()
        for live in list(self.runs.live.values()):
            self.runs.stop(live, "shutdown")
        await self.tasks.wait(STOP_WAIT_SECONDS)
        await self.runner.shutdown()

    def wake(self) -> None:
        self.heartbeat.wake()

    async def sweep(self) -> list[str]:
        return await self.heartbeat.sweep()

    async def idle(self) -> None:
        """Wait until nothing runs here (tests use it instead of sleeping)."""
        await self.tasks.idle()

    async def wait(self, execution_id: str) -> Execution:
        """Wait for a local run to end; the row as stored."""
        live = self.runs.live.get(execution_id)
        if live is not None:
            await live.done.wait()
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
        assert row is not None, execution_id
        return row

    def running_here(self) -> list[str]:
        return list(self.runs.live)

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        return self.tasks.spawn(coro, name)

    # --- checks (requests.py), for the handlers ------------------------------------------------------------

    async def context(self, incident_id: str, step_id: str, task_id: str | None, action_id: str) -> Context:
        return await self.requests.context(incident_id, step_id, task_id, action_id)

    async def may_run(self, ctx: Context, user: str) -> bool:
        return await self.requests.may_run(ctx, user)

    async def authorize(self, ctx: Context, user: str, verb: str = "run", requester: str | None = None,
                        acting: bool = True) -> None:
        await self.requests.authorize(ctx, user, verb, requester, acting)

    def gate(self, ctx: Context) -> None:
        self.requests.gate(ctx)

    def prepare(self, ctx: Context, typed: Mapping[str, str] | None, *, execution_id: str = "") -> Prepared:
        return self.requests.prepare(ctx, typed, execution_id=execution_id)

    def measurable(self, action_id: str) -> bool:
        return self.automation.measurable(action_id)

    # --- requests ----------------------------------------------------------------------------------------

    async def request(self, incident_id: str, step_id: str, task_id: str | None, action_id: str, user: str, *,
                      typed: Mapping[str, str] | None = None, dry_run: bool = False, auto: bool = False) -> Requested:
        """Attempt 1 of an action (a Run click, an automatic task, a scenario step). Refused says why not."""
        ctx = await self.context(incident_id, step_id, task_id, action_id)
        if not auto:
            await self.authorize(ctx, user)
        self.gate(ctx)
        prepared = self.prepare(ctx, typed)
        if not dry_run:  # a dry run changes nothing: always allowed
            await self.requests.refuse_repeat(ctx, prepared)
        manual_dry = dry_run and not ctx.incident.is_drill
        if manual_dry:
            async with self.svc.db.session() as session:
                n = await store.count_dry_runs(session, incident_id, step_id, action_id)
            key = store.idempotency_key(incident_id, step_id, action_id, f"dry-{n + 1}")
        else:
            key = store.idempotency_key(incident_id, step_id, action_id, 1)
        return await self._create(ctx, prepared, user, attempt=1, key=key, dry_run=dry_run or ctx.incident.is_drill,
                                  data={}, approval=needs_approval(ctx.action) and not manual_dry)

    async def retry(self, execution_id: str, user: str, plan: Mapping[str, Any] | None = None) -> Requested:
        """A new attempt a person asked for: the same typed values, fresh defaults, the same gates."""
        row = await self.requests.row(execution_id)
        resumable = row.state == "succeeded" and row.data.get("mode") == "rollback" and plan is not None
        if row.state not in store.RETRYABLE and not resumable:
            raise Refused(f"That run {outcome_phrase(row)}; only a failed, timed out, cancelled or interrupted run "
                          "can be retried.")
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        await self.authorize(ctx, user, "retry")
        self.gate(ctx)
        prepared = self.prepare(ctx, row.data.get("typed") or {})
        await self.requests.refuse_repeat(ctx, prepared)
        attempt = row.attempt + 1
        key = store.idempotency_key(row.incident_id, row.step_id, row.action_id, attempt)
        data = {"plan": dict(plan)} if plan else ({"plan": row.data["plan"]} if row.data.get("plan") else {})
        return await self._create(ctx, prepared, user, attempt=attempt, key=key, dry_run=ctx.incident.is_drill, data=data,
                                  approval=needs_approval(ctx.action))

    async def traffic_choice(self, execution_id: str, user: str, choice: str) -> Requested:
        """The Technical Lead's answer to a halted or paused traffic restore: rollback, retry or continue."""
        if choice not in TRAFFIC_CHOICES:
            raise Refused("Unknown choice.")
        row = await self.requests.row(execution_id)
        at = row.data.get("at") or row.data.get("resume_from")
        if at is None:
            raise Refused("That run is not a halted traffic restore.")
        if choice == "rollback":
            to = row.data.get("rollback_to")
            if not to:
                raise Refused("There is no earlier stage to roll traffic back to.")
            plan: dict[str, Any] = {"mode": "rollback", "to": to, "resume_from": at}
        elif choice == "retry":
            plan = {"mode": "stages", "from": at}
        else:
            following = row.data.get("next_stage")
            if not following:
                raise Refused("There is no later stage to continue to.")
            plan = {"mode": "stages", "from": following}
        return await self.retry(execution_id, user, plan)

    async def _create(self, ctx: Context, prepared: Prepared, user: str, *, attempt: int, key: str, dry_run: bool,
                      data: dict[str, Any], approval: bool) -> Requested:
        now = self.svc.clock.now()
        secret_names = {p.name for p in ctx.action.params if p.secret}
        values = {k: format_value(v) for k, v in prepared.values.items() if k not in secret_names}
        row = Execution(
            id=f"ex-{secrets.token_hex(6)}", incident_id=ctx.incident.id, step_id=ctx.step.id, task_id=ctx.task.id,
            action_id=ctx.action.id, attempt=attempt, idempotency_key=key, state="requested", dry_run=dry_run,
            requested_by=user, requested_at=now, params=dict(prepared.public), argv=list(prepared.argv),
            data={"kind": ctx.action.kind, "typed": prepared.typed, "values": values, **data},
        )
        async with self.svc.db.session() as session:
            created = await store.insert_once(session, row)
            if created:
                what = "Dry run of" if dry_run else "Run of"
                timeline.record(session, ctx.incident.id, now, "execution_requested",
                                f"{what} {ctx.action.title} requested (Step {ctx.step.number}, attempt {attempt})"
                                f": {command_line(row.argv)}", actor=user, execution=row.id, action=ctx.action.id)
                # The decision package asks the action's approvers and answers with `action_approved` or
                # `action_declined` (the two packages meet only through events); the ask is owed with the row.
                asked = await self.svc.events.emit(
                    "approval_needed", session, change=row.id, incident_id=ctx.incident.id, execution_id=row.id,
                    action_id=ctx.action.id, requested_by=user) if approval else None
            else:
                existing = await store.by_key(session, key)
        if not created:
            assert existing is not None
            return Requested(existing, created=False)
        if asked is not None:
            await self.rendering.render(row.id)
            await self.svc.events.deliver(asked)
        else:
            await self._approve_and_launch(row.id)
        return Requested(await self.requests.row(row.id), created=True)

    async def _on_approved(self, incident_id: str, execution_id: str, **_: Any) -> None:
        await self._approve_and_launch(execution_id)

    async def _on_declined(self, incident_id: str, execution_id: str, **_: Any) -> None:
        await self._close_unstarted(execution_id, "cancelled", "approval declined")

    async def _approve_and_launch(self, execution_id: str) -> bool:
        async with self.svc.db.session() as session:
            await store.transition(session, execution_id, ("requested",), "approved")
        return await self.runs.launch(execution_id)

    async def _close_unstarted(self, execution_id: str, state: str, detail: str, by: str | None = None) -> bool:
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            ok = await store.transition(session, execution_id, ("requested", "approved"), state, finished_at=now,
                                        detail=detail, cancel_requested_by=by)
            row = await store.get(session, execution_id)
            if ok and row is not None:
                timeline.record(session, row.incident_id, now, "execution_finished",
                                f"{self.requests.title(row)}: {state} before it ran ({detail})", actor=by,
                                execution=row.id)
                finished = await self.svc.events.emit(
                    "execution_finished", session, change=f"{row.id}:{state}", incident_id=row.incident_id,
                    execution_id=row.id, action_id=row.action_id, outcome=state)
        if ok and row is not None:
            await self.rendering.render(execution_id)
            await self.svc.events.deliver(finished)
        return ok

    # --- people acting on a run ---------------------------------------------------------------------------

    async def cancel(self, execution_id: str, user: str) -> str:
        row = await self.requests.row(execution_id)
        if row.state not in store.ACTIVE:
            raise Refused(f"That run already {outcome_phrase(row)}.")
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        await self.authorize(ctx, user, "cancel", requester=row.requested_by)
        if row.state in ("requested", "approved"):
            if await self._close_unstarted(row.id, "cancelled", "cancelled before it ran", by=user):
                return "Cancelled before it ran."
            row = await self.requests.row(execution_id)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            ok = await store.transition(session, row.id, ("running",), "running", cancel_requested_by=user)
            if ok:
                timeline.record(session, row.incident_id, now, "execution_cancel_requested",
                                f"Cancel of {ctx.action.title} requested", actor=user, execution=row.id)
        if not ok:
            raise Refused("That run has already finished.")
        live = self.runs.live.get(row.id)
        if live is not None:
            self.runs.stop(live, "cancel")
            return "Cancelling: stopping its process group."
        return "Cancelling: the replica running it stops it at its next heartbeat."

    async def skip(self, execution_id: str, user: str) -> bool:
        """After a failure, a person moves on: the execution is marked skipped, and its task/step with a reason."""
        row = await self.requests.row(execution_id)
        if row.state not in store.RETRYABLE:
            raise Refused(f"Only a failed, timed out, cancelled or interrupted run can be skipped; this one "
                          f"{outcome_phrase(row)}.")
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        await self.authorize(ctx, user, "skip")
        reason = f"{ctx.action.title} {outcome_phrase(row)}; skipped by <@{user}>"
        now = self.svc.clock.now()
        single = len(ctx.step.tasks) == 1
        async with self.svc.db.session() as session:
            ok = await store.transition(session, row.id, store.RETRYABLE, "skipped", detail=reason)
            if ok and not single:
                timeline.record(session, row.incident_id, now, "task_skipped",
                                f"Step {ctx.step.number}: task {ctx.task.title} skipped — {reason}", actor=user,
                                step=ctx.step.id, task=ctx.task.id, execution=row.id)
        if not ok:
            return False
        if single:
            await self.checklists.complete_step(row.incident_id, row.step_id, user, "skipped", reason, authorize=False)
        await self.rendering.render(row.id)
        return True
