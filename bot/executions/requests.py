"""What a request for a run is checked against before anything is recorded: the incident, step, task and action
a click names (its Context), who may act (the authorization table), the gates (open incident and step, the
rollback decision, `requires`, no repeat of an earlier success's effect) and the values it would run with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import col, select

from actions.params import format_value
from actions.redact import Redactor
from bot.core import authz, done_before
from bot.core.errors import Refused
from bot.core.services import Services
from bot.executions import store
from bot.executions.specs import ActionInputError, Prepared, prepare, scripts_base
from bot.executions.views import outcome_phrase
from bot.runbook.model import Action, Danger, Phase, Step, Task
from bot.runbook.procedure import Procedure, procedure_for
from bot.runbook.prometheus import with_prometheus
from bot.store.models import Execution, Incident, StepState

AUTO = "auto"  # requested_by of actions the bot starts itself (a task with `auto: true`)
DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024


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


def needs_approval(action: Action) -> bool:
    return action.danger == Danger.destructive or action.approval is not None


def runs_without_form(action: Action) -> bool:
    """A safe action with no parameters, stages, approval or typed confirmation starts on the Run click: its
    form would only ask "really?" (the dry run stays offered for actions that change something)."""
    return (action.danger == Danger.safe and not action.params and action.confirmation is None
            and not needs_approval(action) and not action.stages)


class Requests:
    """The checks every request, retry and launch goes through, and the configuration runs are prepared with."""

    def __init__(self, svc: Services, env: Mapping[str, str] | None = None) -> None:
        self.svc = svc
        # ROLLBOT_PROMETHEUS_URL as a setting reaches the `prometheus` actions like the environment does.
        self.env = with_prometheus(env, svc.settings.prometheus_url)
        self.base = scripts_base(svc.settings.runbook_path, svc.runbook)
        self.redactor = Redactor(svc.settings.secret_values())
        self.max_output_bytes = DEFAULT_MAX_OUTPUT_BYTES

    async def row(self, execution_id: str) -> Execution:
        """The run a button names, as stored; Refused when there is none."""
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
        if row is None:
            raise Refused("No such run.")
        return row

    def title(self, row: Execution) -> str:
        try:
            return self.svc.runbook.action(row.action_id).title
        except KeyError:
            return row.action_id

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

    async def earlier_runs(self, incident_id: str, action: Action) -> list[Execution]:
        if not action.stages:  # only a staged restore is judged (done_before.py): no query for the rest
            return []
        async with self.svc.db.session() as session:
            return list((await session.exec(select(Execution).where(
                Execution.incident_id == incident_id, Execution.action_id == action.id))).all())

    async def _repeat_of(self, incident: Incident, procedure: Procedure, action: Action,
                         values: Mapping[str, str] | None = None) -> str:
        """The refusal for a run that would repeat an earlier success's effect (values None: the runbook's own)."""
        row = done_before.earlier_success(action, await self.earlier_runs(incident.id, action), values=values)
        return done_before.refusal(action, row, done_before.where(procedure, row)) if row is not None else ""

    async def refuse_repeat(self, ctx: Context, prepared: Prepared) -> None:
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
                           redactor=self.redactor, env=self.env, max_output_bytes=self.max_output_bytes,
                           env_extra={"ROLLBOT_INCIDENT_ID": ctx.incident.id, "ROLLBOT_EXECUTION_ID": execution_id})
        except ActionInputError as exc:
            raise InputRefused(f"{ctx.action.title}: {exc}", exc.param) from None
