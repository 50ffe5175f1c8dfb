"""Running runbook actions from Slack: once, after their gates, in plain sight, and never twice by accident.

A request inserts an Execution row under its idempotency key (incident:step:action:attempt), so a double click
or a second replica gets the same row. Every move of its state is a conditional UPDATE. A running execution
holds a lease (renewed by this replica's heartbeat); one whose lease runs out is marked interrupted, with a
Retry button, and never re-run by itself. The action itself runs through actions/ (process groups, redaction,
output cap); its progress message in the step's thread is updated at most once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from actions.params import format_value
from actions.progress import ProgressSnapshot, ProgressThrottle
from actions.redact import Redactor
from actions.result import ActionResult, Outcome
from actions.runner import ActionRunner
from actions.shell import enable_subreaper
from bot.core import authz, done_before, drill_guard, timeline
from bot.core.clock import utc
from bot.core.errors import Refused
from bot.core.events import Outbound
from bot.core.room import Room
from bot.core.services import Services
from bot.executions import store
from bot.executions.progress import ProgressPoster
from bot.executions.scenarios import ScenarioRunner
from bot.executions.specs import (
    ActionInputError,
    Prepared,
    check_spec,
    prepare,
    prometheus_spec,
    scripts_base,
    stage_spec,
)
from bot.executions.traffic import StagedRun
from bot.executions.views import (
    ExecutionView,
    command_line,
    execution_blocks,
    execution_text,
    gate_question,
    gate_unproven,
    outcome_phrase,
    traffic_decision_text,
)
from bot.runbook.model import Action, Danger, Phase, StartWhen, Step, Task, item_id
from bot.runbook.procedure import Procedure, procedure_for
from bot.runbook.prometheus import prometheus_base, with_prometheus
from bot.steps.checklists import Checklists
from bot.store.models import Execution, Incident, StepState

log = logging.getLogger(__name__)

AUTO = "auto"  # requested_by of actions the bot starts itself (a task with `auto: true`)
LEASE = timedelta(seconds=30)
HEARTBEAT_SECONDS = 5.0  # clock seconds between lease renewals (and sweeps for expired leases)
POLL_SECONDS = 0.5  # real seconds between looks at the clock; timers and tests wake the loop sooner
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024
STOP_WAIT_SECONDS = 12.0  # SIGTERM, the process groups' grace, SIGKILL, and recording each result
TRAFFIC_CHOICES = ("rollback", "retry", "continue")


class InputRefused(Refused):
    """A parameter value was refused; `param` names it (None: the runbook's template or script is at fault)."""

    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Context:
    incident: Incident
    procedure: Procedure
    phase: Phase
    step: Step
    task: Task
    action: Action
    step_status: str
    waiting_for: str = ""  # why a required earlier action keeps this one from running, in words; "" when none
    repeat_of: str = ""  # why running it again would undo what an earlier run did (done_before.py); "" when not


@dataclass(frozen=True)
class Requested:
    execution: Execution
    created: bool

    @property
    def message(self) -> str:
        ex = self.execution
        if self.created:
            return f"Requested `{ex.action_id}` (attempt {ex.attempt})."
        return f"`{ex.action_id}` attempt {ex.attempt} already exists ({ex.state.replace('_', ' ')}): nothing new was started."


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


def needs_approval(action: Action) -> bool:
    return action.danger == Danger.destructive or action.approval is not None


def runs_without_form(action: Action) -> bool:
    """A safe action with no parameters, stages, approval or typed confirmation starts on the Run click: its
    form would only ask "really?" (the dry run stays offered for actions that change something)."""
    return (action.danger == Danger.safe and not action.params and action.confirmation is None
            and not needs_approval(action) and not action.stages)


class Executions:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists,
                 env: Mapping[str, str] | None = None) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        # ROLLBOT_PROMETHEUS_URL as a setting reaches the `prometheus` actions like the environment does.
        self._env = with_prometheus(env, svc.settings.prometheus_url)
        self.base = scripts_base(svc.settings.runbook_path, svc.runbook)
        self.redactor = Redactor(svc.settings.secret_values())
        self.runner = ActionRunner(redactor=self.redactor, monotonic=svc.clock.monotonic)
        self.max_output_bytes = DEFAULT_MAX_OUTPUT_BYTES
        self._live: dict[str, Live] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_sweep: float | None = None
        self.scenarios = ScenarioRunner(svc, self)
        svc.events.on("phase_started", self._on_phase_started, name="executions.on_phase_started")
        svc.events.on("decided", self._on_decided, name="executions.on_decided")
        svc.events.on("execution_finished", self._on_finished, name="executions.on_finished")
        svc.events.on("action_approved", self._on_approved, name="executions.on_approved")
        svc.events.on("action_declined", self._on_declined, name="executions.on_declined")

    # --- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """At start-up: mark executions whose lease expired as interrupted, then keep the heartbeat going. A
        replica restarted under the same id (ROLLBOT_REPLICA_ID) runs nothing yet, so a run still leased to it
        was its previous life's: interrupted at once, not after its lease runs out."""
        enable_subreaper()  # a killed script's orphaned grandchildren come to us to be reaped
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            left = await store.left_by(session, self.svc.settings.replica_id)
        for execution_id in left:
            await self._interrupt(execution_id, now, store.owned_by(self.svc.settings.replica_id))
        await self.sweep()
        self._loop_task = asyncio.create_task(self._loop(), name="executions-heartbeat")

    async def stop(self) -> None:
        """Stop what runs here: each is recorded as interrupted (the bot stopped), never left 'running'."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for live in list(self._live.values()):
            self._stop_live(live, "shutdown")
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_SECONDS)
        await self.runner.shutdown()

    def wake(self) -> None:
        self._wake.set()

    async def idle(self) -> None:
        """Wait until nothing runs here (tests use it instead of sleeping)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def wait(self, execution_id: str) -> Execution:
        """Wait for a local run to end; the row as stored."""
        live = self._live.get(execution_id)
        if live is not None:
            await live.done.wait()
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
        assert row is not None, execution_id
        return row

    def running_here(self) -> list[str]:
        return list(self._live)

    # --- requests ----------------------------------------------------------------------------------------

    async def context(self, incident_id: str, step_id: str, task_id: str | None, action_id: str) -> Context:
        """The incident, step, task and action a click names; Refused when they do not belong together."""
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
            state = (await session.exec(select(StepState).where(
                StepState.incident_id == incident_id, StepState.step_id == step_id))).first()
        if incident is None:
            raise Refused("No such incident.")
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        try:
            step = procedure.step(step_id)
            phase = procedure.phase_of(step_id)
        except KeyError:
            raise Refused("That step is not part of this incident's procedure.") from None
        def runs(t: Task) -> bool:  # the task's own action, or one of its metric gates
            return t.action == action_id or t.gate_for(action_id) is not None

        task = next((t for t in step.tasks if t.id == task_id and runs(t)), None) if task_id else \
            next((t for t in step.tasks if runs(t)), None)
        if task is None:
            raise Refused(f"Step {step.number} has no action `{action_id}`.")
        action = self.svc.runbook.action(action_id)
        return Context(incident=incident, procedure=procedure, phase=phase, step=step, task=task, action=action,
                       step_status=state.status if state else "pending",
                       waiting_for=await self._waiting_for(incident, action),
                       repeat_of=await self._repeat_of(incident, procedure, action))

    async def _earlier_runs(self, incident_id: str, action: Action) -> list[Execution]:
        if not action.stages:  # only a staged restore is judged (done_before.py): no query for the rest
            return []
        async with self.svc.db.session() as session:
            return list((await session.exec(select(Execution).where(
                Execution.incident_id == incident_id, Execution.action_id == action.id))).all())

    async def _repeat_of(self, incident: Incident, procedure: Procedure, action: Action,
                         values: Mapping[str, str] | None = None) -> str:
        """The refusal for a run that would repeat an earlier success's effect (values None: the runbook's own)."""
        row = done_before.earlier_success(action, await self._earlier_runs(incident.id, action), values=values)
        return done_before.refusal(action, row, done_before.where(procedure, row)) if row is not None else ""

    async def _refuse_repeat(self, ctx: Context, prepared: Prepared) -> None:
        """With the values this run would use: the same effect as an earlier success is refused, saying why."""
        values = {k: format_value(v) for k, v in prepared.values.items()}
        why = await self._repeat_of(ctx.incident, ctx.procedure, ctx.action, values)
        if why:
            raise Refused(why)

    async def _waiting_for(self, incident: Incident, action: Action) -> str:
        """The runbook's `requires`: each named action must have succeeded in this incident (for real, or in a
        drill its dry run). Empty when nothing is missing; otherwise which, and where each stands."""
        if not action.requires:
            return ""
        async with self.svc.db.session() as session:
            rows = (await session.exec(select(Execution).where(
                Execution.incident_id == incident.id, col(Execution.action_id).in_(action.requires)))).all()
        missing = []
        for required in action.requires:
            mine = [r for r in rows if r.action_id == required]
            if any(r.state == "succeeded" and (not r.dry_run or incident.is_drill) for r in mine):
                continue
            title = self.svc.runbook.action(required).title
            busy = next((r for r in mine if r.state in ("requested", "approved", "running")), None)
            if busy:
                missing.append(f"{title} ({busy.state.replace('_', ' ')} now)")
            elif mine:
                missing.append(f"{title} (its last run {outcome_phrase(mine[-1])}: Retry it first)")
            else:
                missing.append(f"{title} (not run yet)")
        if not missing:
            return ""
        return f"{action.title} can run only after {' and '.join(missing)} has succeeded."

    async def may_run(self, ctx: Context, user: str) -> bool:
        return bool(await authz.allowed(self.svc, "run_action", user, self._subject(ctx)))

    def _subject(self, ctx: Context, requester: str | None = None) -> authz.Subject:
        return authz.Subject(ctx.incident.id, step_owner=ctx.step.owner, requester=requester)

    async def authorize(self, ctx: Context, user: str, verb: str = "run", requester: str | None = None,
                        acting: bool = True) -> None:
        """The authorization table's rule for `verb` (run | retry | cancel | skip) of this step's action;
        acting=False for a click that only opens the Run form."""
        interaction = "run_action" if verb == "run" else f"execution_{verb}"
        await authz.require(self.svc, interaction, user, self._subject(ctx, requester), acting=acting)

    def gate(self, ctx: Context) -> None:
        """Open incident, open step, and — after the decision step's phase — an approved rollback decision."""
        if ctx.incident.status != "open":
            raise Refused(f"The incident is {ctx.incident.status}.")
        if ctx.step_status not in ("pending", "active"):
            raise Refused(f"Step {ctx.step.number} is already {ctx.step_status}.")
        if ctx.waiting_for:
            raise Refused(ctx.waiting_for)
        if ctx.repeat_of:
            raise Refused(ctx.repeat_of)
        decision = ctx.procedure.decision_step()
        if decision is None:
            return
        phases = [p.id for p in ctx.procedure.phases]
        if phases.index(ctx.phase.id) > phases.index(ctx.procedure.phase_of(decision.id).id) \
                and ctx.incident.decision != "approved":
            raise Refused(f"Step {ctx.step.number} comes after the rollback decision (Step {decision.number}), "
                          "which is not approved.")

    def prepare(self, ctx: Context, typed: Mapping[str, str] | None, *, execution_id: str = "") -> Prepared:
        try:
            return prepare(ctx.action, self.base, self.svc.clock.now(), typed=typed,
                           incident_version=ctx.incident.version, drill=ctx.incident.is_drill,
                           redactor=self.redactor, env=self._env, max_output_bytes=self.max_output_bytes,
                           env_extra={"ROLLBOT_INCIDENT_ID": ctx.incident.id, "ROLLBOT_EXECUTION_ID": execution_id})
        except ActionInputError as exc:
            raise InputRefused(f"{ctx.action.title}: {exc}", exc.param) from None

    async def request(self, incident_id: str, step_id: str, task_id: str | None, action_id: str, user: str, *,
                      typed: Mapping[str, str] | None = None, dry_run: bool = False, auto: bool = False) -> Requested:
        """Attempt 1 of an action (a Run click, an automatic task, a scenario step). Refused says why not."""
        ctx = await self.context(incident_id, step_id, task_id, action_id)
        if not auto:
            await self.authorize(ctx, user)
        self.gate(ctx)
        prepared = self.prepare(ctx, typed)
        if not dry_run:  # a dry run changes nothing: always allowed
            await self._refuse_repeat(ctx, prepared)
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
        row = await self._row(execution_id)
        resumable = row.state == "succeeded" and row.data.get("mode") == "rollback" and plan is not None
        if row.state not in store.RETRYABLE and not resumable:
            raise Refused(f"That run {outcome_phrase(row)}; only a failed, timed out, cancelled or interrupted run "
                          "can be retried.")
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        await self.authorize(ctx, user, "retry")
        self.gate(ctx)
        prepared = self.prepare(ctx, row.data.get("typed") or {})
        await self._refuse_repeat(ctx, prepared)
        attempt = row.attempt + 1
        key = store.idempotency_key(row.incident_id, row.step_id, row.action_id, attempt)
        data = {"plan": dict(plan)} if plan else ({"plan": row.data["plan"]} if row.data.get("plan") else {})
        return await self._create(ctx, prepared, user, attempt=attempt, key=key, dry_run=ctx.incident.is_drill, data=data,
                                  approval=needs_approval(ctx.action))

    async def traffic_choice(self, execution_id: str, user: str, choice: str) -> Requested:
        """The Technical Lead's answer to a halted or paused traffic restore: rollback, retry or continue."""
        if choice not in TRAFFIC_CHOICES:
            raise Refused("Unknown choice.")
        row = await self._row(execution_id)
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
            else:
                existing = await store.by_key(session, key)
        if not created:
            assert existing is not None
            return Requested(existing, created=False)
        if approval:
            await self._ask_approval(ctx, row)
        else:
            await self._approve_and_launch(row.id)
        return Requested(await self._row(row.id), created=True)

    async def _ask_approval(self, ctx: Context, row: Execution) -> None:
        """The decision package asks the action's approvers (`approval_needed`), and answers with
        `action_approved` or `action_declined`: the two packages meet only through these events."""
        await self._render(row.id)
        await self.svc.events.emit("approval_needed", change=row.id, incident_id=ctx.incident.id, execution_id=row.id,
                                   action_id=ctx.action.id, requested_by=row.requested_by)

    async def _on_approved(self, incident_id: str, execution_id: str, **_: Any) -> None:
        await self._approve_and_launch(execution_id)

    async def _on_declined(self, incident_id: str, execution_id: str, **_: Any) -> None:
        await self._close_unstarted(execution_id, "cancelled", "approval declined")

    async def _approve_and_launch(self, execution_id: str) -> bool:
        async with self.svc.db.session() as session:
            await store.transition(session, execution_id, ("requested",), "approved")
        return await self._launch(execution_id)

    async def _close_unstarted(self, execution_id: str, state: str, detail: str, by: str | None = None) -> bool:
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            ok = await store.transition(session, execution_id, ("requested", "approved"), state, finished_at=now,
                                        detail=detail, cancel_requested_by=by)
            row = await store.get(session, execution_id)
            if ok and row is not None:
                timeline.record(session, row.incident_id, now, "execution_finished",
                                f"{self._title(row)}: {state} before it ran ({detail})", actor=by, execution=row.id)
                finished = await self.svc.events.emit(
                    "execution_finished", session, change=f"{row.id}:{state}", incident_id=row.incident_id,
                    execution_id=row.id, action_id=row.action_id, outcome=state)
        if ok and row is not None:
            await self._render(execution_id)
            await self.svc.events.deliver(finished)
        return ok

    # --- running -------------------------------------------------------------------------------------------

    async def _launch(self, execution_id: str) -> bool:
        """approved -> running under this replica's lease, then run it in the background. Once across replicas."""
        row = await self._row(execution_id)
        if row.state != "approved" or execution_id in self._live:
            return False
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        now = self.svc.clock.now()
        poster = ProgressPoster(lambda snap: self._render(execution_id, snap))
        throttle = ProgressThrottle(poster.push, interval_s=1.0, keep_lines=5, monotonic=self.svc.clock.monotonic)
        live = Live(row=row, context=ctx, throttle=throttle, poster=poster,
                    timeout_at=now + timedelta(seconds=ctx.action.timeout_seconds))
        self._live[execution_id] = live  # before the UPDATE, so a concurrent sweep counts it as ours
        try:
            async with self.svc.db.session() as session:
                ok = await store.transition(session, execution_id, ("approved",), "running", started_at=now,
                                            lease_owner=self.svc.settings.replica_id, lease_expires_at=now + LEASE)
                if ok:
                    timeline.record(session, row.incident_id, now, "execution_started",
                                    f"{ctx.action.title} started" + (" (dry run)" if row.dry_run else ""),
                                    actor=row.requested_by, execution=row.id)
        except BaseException:
            self._live.pop(execution_id, None)
            raise
        if not ok:
            self._live.pop(execution_id, None)
            return False
        row.state, row.started_at, row.lease_owner = "running", now, self.svc.settings.replica_id
        live.task = self.spawn(self._run(live), name=f"execution:{execution_id}")
        return True

    def spawn(self, coro: Any, name: str | None = None) -> asyncio.Task[Any]:
        """Background work of this module (runs, scenario steps), kept referenced and awaited by idle()."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("execution task failed", exc_info=task.exception())

    async def _run(self, live: Live) -> None:
        row, ctx = live.row, live.context
        result: ActionResult
        data: dict[str, Any] = {}
        try:
            await self._render(row.id)
            live.poster.start()
            live.prepared = self.prepare(ctx, row.data.get("values") or {}, execution_id=row.id)
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
            self._live.pop(row.id, None)
            live.done.set()

    async def _run_staged(self, live: Live, prepared: Prepared) -> tuple[ActionResult, dict[str, Any]]:
        action, row = live.context.action, live.row
        plan = row.data.get("plan") or {"mode": "stages", "from": action.stages[0]}
        drill = live.context.incident.is_drill
        check_action = self.svc.runbook.action(action.check) if action.check else None
        check = check_spec(check_action, self._env) if check_action else None
        gate_actions = [self.svc.runbook.action(g) for g in action.stage_gates]
        measured = [g for g in gate_actions if prometheus_base(g, self._env)]
        gates = [prometheus_spec(g, {}, self._env) for g in measured]
        unmeasured = [g.title for g in gate_actions if g not in measured]
        notes = [f"[rollbot] no Prometheus is configured: {' and '.join(unmeasured)} is not measured at any stage; "
                 "judging it at each stage is a person's call"] if unmeasured else []

        def spec(percent: int) -> Any:
            return stage_spec(prepared, self.base, percent, drill=drill, max_output_bytes=self.max_output_bytes,
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
                           cancel=live.cancel, monotonic=self.svc.clock.monotonic, max_output_bytes=self.max_output_bytes,
                           gates=gates, notes=notes)
        live.staged = staged
        if plan.get("mode") == "rollback":
            return await staged.roll_back(int(plan["to"]), plan.get("resume_from"))
        result, data = await staged.run(stages, action.stages)
        return result, {**data, "stage_gates": [g.id for g in measured]}  # what a success proves (validation)

    def _stop_live(self, live: Live, reason: str) -> None:
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
        await self._render(row.id)
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
        elif gate_unproven(view := await self._view(row)):  # no data pauses the item and asks its owner
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
        view = await self._view(row)
        ref = await self.svc.slack.message_ref(row.incident_id, f"execution:{row.id}")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.thread_ts or ref.ts, traffic_decision_text(view),
                                       owed=(row.incident_id, f"reply:traffic_question:{row.id}"))

    # --- people acting on a run ---------------------------------------------------------------------------

    async def cancel(self, execution_id: str, user: str) -> str:
        row = await self._row(execution_id)
        if row.state not in store.ACTIVE:
            raise Refused(f"That run already {outcome_phrase(row)}.")
        ctx = await self.context(row.incident_id, row.step_id, row.task_id, row.action_id)
        await self.authorize(ctx, user, "cancel", requester=row.requested_by)
        if row.state in ("requested", "approved"):
            if await self._close_unstarted(row.id, "cancelled", "cancelled before it ran", by=user):
                return "Cancelled before it ran."
            row = await self._row(execution_id)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            ok = await store.transition(session, row.id, ("running",), "running", cancel_requested_by=user)
            if ok:
                timeline.record(session, row.incident_id, now, "execution_cancel_requested",
                                f"Cancel of {ctx.action.title} requested", actor=user, execution=row.id)
        if not ok:
            raise Refused("That run has already finished.")
        live = self._live.get(row.id)
        if live is not None:
            self._stop_live(live, "cancel")
            return "Cancelling: stopping its process group."
        return "Cancelling: the replica running it stops it at its next heartbeat."

    async def skip(self, execution_id: str, user: str) -> bool:
        """After a failure, a person moves on: the execution is marked skipped, and its task/step with a reason."""
        row = await self._row(execution_id)
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
        await self._render(row.id)
        return True

    # --- heartbeat, leases, timeouts ---------------------------------------------------------------------------

    async def sweep(self) -> list[str]:
        """Renew our leases, act on Cancel requests and timeouts, and mark executions whose lease expired as
        interrupted. Runs at start-up and every heartbeat; returns the ids it marked interrupted."""
        now = self.svc.clock.now()
        self._last_sweep = self.svc.clock.monotonic()
        mine = list(self._live)
        async with self.svc.db.session() as session:
            await store.renew_leases(session, mine, self.svc.settings.replica_id, now + LEASE)
            rows = await store.running_ids(session, mine)
            orphans = await store.expired(session, now, exclude=mine)
        for row in rows:
            live = self._live.get(row.id)
            if live is None or live.reason is not None:
                continue
            if row.cancel_requested_by:
                live.row.cancel_requested_by = row.cancel_requested_by
                self._stop_live(live, "cancel")
            elif now >= live.timeout_at:
                self._stop_live(live, "timeout")
        interrupted = [i for i in orphans if await self._interrupt(i, now)]
        for live in list(self._live.values()):
            await live.throttle.tick()
        return interrupted

    async def _interrupt(self, execution_id: str, now: datetime, gone: Any = None) -> bool:
        """`gone`: the condition that its process is gone (by default, its lease ran out)."""
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
            if row is None:
                return False
            owner = row.lease_owner or "an unknown replica"
            ok = await store.transition(
                session, execution_id, ("running",), "interrupted",
                store.lease_expired(now) if gone is None else gone, finished_at=now,
                detail=f"lease held by {owner} expired: its process is gone. Not re-run; Retry to run it again."
                if gone is None else f"{owner} restarted while it ran. Not re-run; Retry to run it again.")
            if ok:
                timeline.record(session, row.incident_id, now, "execution_interrupted",
                                f"{self._title(row)} interrupted: the bot running it stopped; it was not re-run",
                                execution=row.id, lease_owner=row.lease_owner)
                finished = await self.svc.events.emit(
                    "execution_finished", session, change=f"{row.id}:interrupted", incident_id=row.incident_id,
                    execution_id=row.id, action_id=row.action_id, outcome="interrupted")
        if not ok:
            return False
        await self._render(execution_id)
        await self.svc.events.deliver(finished)
        return True

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
            self._wake.clear()
            try:
                due = self._last_sweep is None or \
                    self.svc.clock.monotonic() - self._last_sweep >= HEARTBEAT_SECONDS
                if due:
                    await self.sweep()
                else:
                    for live in list(self._live.values()):
                        await live.throttle.tick()
            except Exception:
                log.exception("execution heartbeat failed")

    # --- automation ----------------------------------------------------------------------------------------------

    async def _on_phase_started(self, incident_id: str, phase_id: str | None = None, **_: Any) -> None:
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

    async def _on_decided(self, incident_id: str, decision: str, **_: Any) -> None:
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

    async def _on_finished(self, incident_id: str, action_id: str, outcome: str, **_: Any) -> None:
        if outcome == "succeeded":
            await self._tick_done_before(incident_id, action_id)
            await self._start_when(incident_id, lambda w: w.succeeded == action_id)

    async def _tick_done_before(self, incident_id: str, action_id: str) -> None:
        """Other tasks running the same action are done by this success (traffic already at 100 %): their items
        tick themselves, as the run's own task's do. The event is redelivered until this succeeds."""
        action = self.svc.runbook.action(action_id)
        rows = await self._earlier_runs(incident_id, action)
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
        return prometheus_base(self.svc.runbook.action(action_id), self._env) is not None

    # --- rendering ------------------------------------------------------------------------------------------------

    async def _row(self, execution_id: str) -> Execution:
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
        if row is None:
            raise Refused("No such run.")
        return row

    def _title(self, row: Execution) -> str:
        try:
            return self.svc.runbook.action(row.action_id).title
        except KeyError:
            return row.action_id

    async def _view(self, row: Execution, snap: ProgressSnapshot | None = None) -> ExecutionView:
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
        return ExecutionView(execution=row, action_title=self._title(row), step_label=label, is_drill=incident.is_drill,
                             last_lines=snap.last_lines if snap else (),
                             elapsed_s=snap.elapsed_s if snap else None, deciders=deciders, approval_note=approval,
                             gate_item=gate_item)

    async def _render(self, execution_id: str, snap: ProgressSnapshot | None = None) -> None:
        """Post the execution's message in its step's thread the first time, update it afterwards.
        `snap` is live progress (last lines, elapsed); without it the stored row is shown."""
        live = self._live.get(execution_id)
        row = live.row if (live is not None and snap is not None) else await self._row(execution_id)
        view = await self._view(row, snap)
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
