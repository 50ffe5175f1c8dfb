"""The runbook schema: a procedure as validated data. The engine serves any runbook of this shape.

Every model forbids unknown keys; cross-references (owners, actions, scenarios, roles in policies) are
checked once the whole document is parsed, so an error names the path inside the file.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.core import units

T = TypeVar("T")
Id = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Window(Strict):
    """Minutes after the incident opens: a step planned for 5-7 minutes has start=5, end=7."""

    start: float = Field(ge=0)
    end: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end}) at or before it starts ({self.start})")
        return self


class Objectives(Strict):
    rto_minutes: float = Field(gt=0)
    rpo_minutes: float = Field(ge=0)
    target_minutes: Window
    statement: str


class Role(Strict):
    id: Id
    title: str
    response_minutes: float | None = Field(default=None, gt=0)
    responder: bool = False  # part of the immediate response team (paged when an incident opens)


class Policy(Strict):
    """Who must approve: any one of `any_of`, or one distinct person for each role in `all_of`."""

    any_of: list[Id] = []
    all_of: list[Id] = []

    @model_validator(mode="after")
    def _one_kind(self) -> Policy:
        if bool(self.any_of) == bool(self.all_of):
            raise ValueError("a policy names roles in exactly one of any_of / all_of")
        return self

    @property
    def roles(self) -> list[str]:
        return self.any_of or self.all_of


class Level(Strict):
    id: Id
    title: str
    description: str
    decision_minutes: float = Field(gt=0)
    approval: Policy
    page_roles: list[Id] = []  # responders invited and paged at this level (besides the approvers)


class Comparison(StrEnum):
    gt = ">"
    ge = ">="
    lt = "<"
    le = "<="
    between = "between"


class Condition(Strict):
    """A measurable trigger: `metric op threshold` sustained for `for_minutes`."""

    metric: str
    op: Comparison
    threshold: float
    upper: float | None = None  # for `between`
    unit: str = ""
    for_minutes: float = 0
    # The unit alerts carry the value in when they do not say (e.g. `ratio` for Prometheus rates against a `%`
    # threshold); an alert's own `unit` label, value suffix or metric-name suffix wins over it.
    alert_unit: str | None = None

    @model_validator(mode="after")
    def _between(self) -> Condition:
        if (self.op == Comparison.between) != (self.upper is not None):
            raise ValueError("`between` needs `upper`, and only `between` takes it")
        if self.upper is not None and self.upper <= self.threshold:
            raise ValueError("upper must exceed threshold")
        if self.alert_unit is not None:
            if not units.known(self.alert_unit):
                raise ValueError(f"alert_unit {self.alert_unit!r} is not a unit rollbot knows (e.g. ratio, %, s, ms)")
            if not units.compatible(self.alert_unit, self.unit or None):
                raise ValueError(f"alert_unit {self.alert_unit!r} cannot be converted to the unit {self.unit!r}")
        return self

    def holds(self, value: float) -> bool:
        match self.op:
            case Comparison.gt:
                return value > self.threshold
            case Comparison.ge:
                return value >= self.threshold
            case Comparison.lt:
                return value < self.threshold
            case Comparison.le:
                return value <= self.threshold
            case Comparison.between:
                return self.threshold <= value <= (self.upper or value)


class TriggerMatch(Strict):
    """How an alert maps to this trigger: by alert name, by labels, or by an explicit `rollbot_trigger` label."""

    alertnames: list[str] = []
    labels: dict[str, str] = {}


class Trigger(Strict):
    id: Id
    level: Id
    title: str
    description: str
    condition: Condition | None = None
    match: TriggerMatch = TriggerMatch()
    scenario: Id | None = None
    # What users cannot do while it lasts, in customers' words ("card payments are failing"), and the same said
    # once it is over ("card payments failed"): the comms say it.
    impact: str = ""
    impact_past: str = ""


class ParamType(StrEnum):
    string = "string"
    integer = "integer"
    number = "number"
    boolean = "boolean"
    choice = "choice"
    int_list = "int_list"


class Param(Strict):
    name: Id
    type: ParamType = ParamType.string
    description: str = ""
    pattern: str | None = None
    choices: list[str] = []
    default: str | None = None
    default_from_file: str | None = None
    default_now: str | None = None  # strftime format, e.g. %Y%m%d_%H%M%S
    secret: bool = False


class Danger(StrEnum):
    safe = "safe"
    caution = "caution"
    destructive = "destructive"


class Confirmation(Strict):
    """A phrase the requester must type, e.g. the restore point; `{param}` fields are filled from parameters."""

    phrase: str
    prompt: str


class Action(Strict):
    id: Id
    title: str
    kind: Literal["shell", "http", "check", "prometheus"] = "shell"
    # shell
    script: str | None = None  # path relative to the runbook's scripts directory, e.g. launch/scripts/x.sh
    args: list[str] = []  # argv tokens: literal text or "{param}" alone
    # http / check
    method: str = "POST"
    url: str | None = None
    headers: dict[str, str] = {}
    body: str | None = None
    expect_status: list[int] = [200]
    max_latency_ms: float | None = None
    # prometheus: `query` (PromQL; `{param}` fields filled, `{{ }}` for literal braces) must stay `op threshold`
    # for `for_seconds`; `url` is Prometheus itself, else ROLLBOT_PROMETHEUS_URL. No data pauses and asks a person.
    query: str | None = None
    op: Literal["<", "<=", ">", ">="] = "<"
    threshold: float | None = None
    # The threshold's unit as the runbook speaks (`200` `ms`, `0.1` `%`), and the unit the query answers in
    # (Prometheus' base units: `s`, `ratio`); answers are converted into `unit` before they are judged and shown.
    unit: str = ""
    query_unit: str | None = None
    for_seconds: float = Field(default=0, ge=0)
    step_seconds: float = Field(default=15, gt=0)
    idempotent: bool = False
    params: list[Param] = []
    danger: Danger = Danger.safe
    timeout_seconds: float = Field(default=300, gt=0)
    approval: Policy | None = None  # its own policy beyond the rollback decision
    confirmation: Confirmation | None = None
    stages: list[int] = []  # traffic stages, e.g. [25, 50, 75, 100]: the action runs once per stage
    stage_param: Id | None = None  # the parameter each stage's value fills
    check: Id | None = None  # an action of kind check run after each stage
    # prometheus actions also run after each stage (after `check`) when a Prometheus is configured; without one
    # the run says, at its start, that these are a person's call at each stage.
    stage_gates: list[Id] = []
    staging_args: list[str] | None = None  # argv used in drills against staging, when it differs
    # Actions that must have succeeded in the incident before this one may run (the rollback after the snapshot).
    requires: list[Id] = []
    # What a success means for customer data, so the comms claim only what ran: a snapshot taken, or data restored
    # from a backup (data written since the restore point lost). A destructive action counts as a restore.
    data_effect: Literal["snapshot", "restore"] | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> Action:
        if self.kind == "shell" and not self.script:
            raise ValueError("a shell action needs `script`")
        if self.kind in ("http", "check") and not self.url:
            raise ValueError(f"a {self.kind} action needs `url`")
        if self.kind == "prometheus" and (not self.query or self.threshold is None):
            raise ValueError("a prometheus action needs `query` and `threshold`")
        if (self.unit or self.query_unit) and self.kind != "prometheus":
            raise ValueError("`unit` and `query_unit` are for prometheus actions")
        for unit in (self.unit or None, self.query_unit):
            if unit is not None and not units.known(unit):
                raise ValueError(f"unit {unit!r} is not a unit rollbot knows (e.g. ratio, %, s, ms)")
        if not units.compatible(self.query_unit, self.unit or None):
            raise ValueError(f"query_unit {self.query_unit!r} cannot be converted to the unit {self.unit!r}")
        if self.stage_gates and not self.stages:
            raise ValueError("stage_gates run after each stage: the action needs `stages`")
        if self.danger == Danger.destructive and not (self.approval and self.confirmation):
            raise ValueError("a destructive action needs its own `approval` and a `confirmation`")
        names = {p.name for p in self.params}
        for token in [*self.args, *(self.staging_args or [])]:
            if token.startswith("{") and token.endswith("}") and token[1:-1] not in names:
                raise ValueError(f"argument {token} names no parameter of this action")
        if self.stage_param and self.stage_param not in names:
            raise ValueError(f"stage_param {self.stage_param} names no parameter of this action")
        return self


class StartWhen(Strict):
    """When a task's action starts by itself: as soon as its gate opens, not when someone clicks Run."""

    decision: Literal["approved"] | None = None  # the rollback decision is approved
    succeeded: Id | None = None  # this earlier action succeeded in the incident

    @model_validator(mode="after")
    def _one(self) -> StartWhen:
        if (self.decision is None) == (self.succeeded is None):
            raise ValueError("say exactly one of `decision: approved` or `succeeded: <action>`")
        return self


class Gate(Strict):
    """A checklist item a `prometheus` action measures. With a Prometheus configured the action runs by itself
    (when the step's phase starts, or at `start_when`) and its pass ticks the item; a failure or no data leaves the
    item to a person, saying why. Without a Prometheus the step says the item is a person's call."""

    item: str  # the item's text, exactly as in the task's `items`
    action: Id
    start_when: StartWhen | None = None


class Task(Strict):
    """A numbered block inside a step (e.g. "Incident Confirmation (30 seconds)") with its checklist items."""

    id: Id
    title: str
    minutes: float | None = Field(default=None, gt=0)
    note: str = ""
    action: Id | None = None
    auto: bool = False  # run the action as soon as the step starts
    start_when: StartWhen | None = None  # or as soon as its gate opens, before the step starts
    optional: bool = False  # e.g. the database rollback, only if corruption is confirmed
    # The bot's own work proves these items: `war_room_ready` (the channel open, the responders invited and
    # paged, the incident clock running) ticks them by itself when the war room is ready.
    ticked_by: Literal["war_room_ready"] | None = None
    items: list[str] = Field(min_length=1)
    gates: list[Gate] = []  # items measured from metrics (Step 7's performance validation)

    @model_validator(mode="after")
    def _gated_items(self) -> Task:
        for gate in self.gates:
            if gate.item not in self.items:
                raise ValueError(f"gate item {gate.item!r} is not one of this task's items")
            if gate.action == self.action:
                raise ValueError(f"gate action {gate.action!r} is already the task's own action")
        actions = [g.action for g in self.gates]
        if len(set(actions)) != len(actions):
            raise ValueError("each gate of a task names a different action")
        return self

    def gate_for(self, action_id: str) -> Gate | None:
        return next((g for g in self.gates if g.action == action_id), None)


class Step(Strict):
    id: Id
    number: int | float  # a scenario's steps are numbered within the phase they replace: 5.1, 5.2 …
    title: str
    owner: Id
    window: Window
    kind: Literal["checklist", "decision"] = "checklist"
    summary: str = ""
    tasks: list[Task] = Field(min_length=1)


class Phase(Strict):
    id: Id
    number: int
    title: str
    window: Window
    steps: list[Step] = Field(min_length=1)
    replaced_by_scenario: bool = False  # a scenario swaps in its own steps for this phase


class ScenarioStep(Strict):
    id: Id
    title: str
    minutes: float = Field(gt=0)
    owner: Id | None = None
    action: Id | None = None
    start_when: StartWhen | None = None  # the action starts by itself when this gate opens (as a task's does)
    items: list[str] = []


class Scenario(Strict):
    id: Id
    number: int
    title: str
    trigger: str
    triggers: list[Id] = []
    execution_minutes: float = Field(gt=0)
    procedure: Id | None = None  # the scenario's whole-procedure script
    owner: Id
    steps: list[ScenarioStep] = Field(min_length=1)
    impact: str = ""  # what users cannot do, when the trigger does not say
    impact_past: str = ""

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        total = sum(s.minutes for s in self.steps)
        if total > self.execution_minutes + 1e-9:
            raise ValueError(f"its steps take {total:g} min, over its execution time {self.execution_minutes:g}")
        return self


class LabelledItem(Strict):
    label: str
    text: str
    # Actions whose success after the rollback started proves this item: it ticks itself (by the bot, saying
    # which run proved it) when the checklist is posted. A person can still untick it.
    proven_by: list[Id] = []


class ValidationChecklist(Strict):
    id: Id
    title: str
    owner: Id | None = None  # who ticks it, with the incident leads (bot/core/authz.py)
    items: list[LabelledItem] = Field(min_length=1)


class Rung(Strict):
    level: int = Field(ge=1)
    role: Id
    minutes: float = Field(gt=0)


class ExternalContact(Strict):
    service: str
    contact: str
    sla: str
    sla_minutes: float = Field(gt=0)
    escalation: str


class Escalation(Strict):
    management: list[Rung] = Field(min_length=1)
    external: list[ExternalContact] = []

    @field_validator("management")
    @classmethod
    def _ascending(cls, rungs: list[Rung]) -> list[Rung]:
        for a, b in zip(rungs, rungs[1:], strict=False):
            if b.minutes < a.minutes or b.level <= a.level:
                raise ValueError(f"rung {b.level} comes before rung {a.level} (levels and minutes must ascend)")
        return rungs


class Audience(StrEnum):
    customers = "customers"
    status_page = "status_page"
    internal = "internal"
    support = "support"
    executives = "executives"


class Moment(StrEnum):
    """When the engine drafts a message (the seed's moments)."""

    declared = "declared"
    decided = "decided"  # the rollback was approved: the cause is identified, the fix under way
    traffic_diverted = "traffic_diverted"
    rollback_completed = "rollback_completed"
    resolved = "resolved"


class CommsTemplate(Strict):
    id: Id
    title: str
    audience: Audience
    when: Moment
    approver: Id
    subject: str = ""
    body: str  # Jinja2 (sandboxed), filled from the incident
    # For the status page: the Statuspage incident status this update sets (the first creates the page incident).
    statuspage_status: Literal["investigating", "identified", "monitoring", "resolved"] | None = None
    # The update promises the next one within this many minutes: the approver is reminded when it is due.
    next_update_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _status_page_only(self) -> CommsTemplate:
        if self.statuspage_status and self.audience != Audience.status_page:
            raise ValueError("statuspage_status is for status_page templates only")
        return self


class CommsSettings(Strict):
    """How the comms speak: the service's name and the audience's time zone (times are shown in it, with UTC)."""

    service: str = ""
    timezone: str = "UTC"
    status_page_url: str = ""  # the public status page people read: bookmarked in every incident channel

    @field_validator("status_page_url")
    @classmethod
    def _page_url(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or any(c in value for c in "<>| ")):
            raise ValueError("an http(s) address without spaces or <>|")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)") from exc
        return value


class ItemGroup(Strict):
    title: str
    items: list[str] = Field(min_length=1)


class FollowUp(Strict):
    id: Id
    title: str
    within_minutes: float = Field(gt=0)
    owner: Id
    groups: list[ItemGroup] = Field(min_length=1)


class Drill(Strict):
    id: Id
    title: str
    schedule: str
    cron: str  # five fields, e.g. "0 10 1 */3 *"
    duration_minutes: float = Field(gt=0)
    environment: str
    kind: Literal["full", "partial"]
    checklist_title: str
    items: list[str] = Field(min_length=1)
    scenario: Id | None = None
    participants: list[Id] = []  # roles taking part; management DMs in a drill go only to them

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from exc
        return value


class SuccessMetric(Strict):
    id: Id
    label: str
    target: str
    measure: Literal["rollback_minutes", "data_loss", "users_affected_pct", "stakeholders_notified", "recovery_minutes"]
    op: Comparison | None = None
    threshold: float | None = None


class Document(Strict):
    version: str
    owner: Id
    next_review: str
    last_updated: str = ""
    hotline: str = ""


class Runbook(Strict):
    name: Id
    title: str
    overview: str
    objectives: Objectives
    roles: list[Role] = Field(min_length=1)
    incident_lead_roles: list[Id] = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    triggers: list[Trigger] = Field(min_length=1)
    phases: list[Phase] = Field(min_length=1)
    actions: list[Action] = []
    scenarios: list[Scenario] = []
    validation: list[ValidationChecklist] = []
    escalation: Escalation
    comms: CommsSettings = CommsSettings()
    communications: list[CommsTemplate] = []
    follow_ups: list[FollowUp] = []
    drills: list[Drill] = []
    success_metrics: list[SuccessMetric] = []
    key_success_factors: list[LabelledItem] = []
    critical_points: list[LabelledItem] = []
    document: Document
    scripts_dir: str = "."  # where `script` paths are resolved, relative to the runbook file

    # --- lookups -------------------------------------------------------------------------------

    def role(self, role_id: str) -> Role:
        return _by_id(self.roles, role_id, "role")

    def level(self, level_id: str) -> Level:
        return _by_id(self.levels, level_id, "level")

    def trigger(self, trigger_id: str) -> Trigger:
        return _by_id(self.triggers, trigger_id, "trigger")

    def action(self, action_id: str) -> Action:
        return _by_id(self.actions, action_id, "action")

    def scenario(self, scenario_id: str) -> Scenario:
        return _by_id(self.scenarios, scenario_id, "scenario")

    def phase(self, phase_id: str) -> Phase:
        return _by_id(self.phases, phase_id, "phase")

    def step(self, step_id: str) -> Step:
        for phase in self.phases:
            for step in phase.steps:
                if step.id == step_id:
                    return step
        raise KeyError(f"no step {step_id!r}")

    def phase_of(self, step_id: str) -> Phase:
        for phase in self.phases:
            if any(s.id == step_id for s in phase.steps):
                return phase
        raise KeyError(f"no step {step_id!r}")

    def all_steps(self) -> list[Step]:
        return [s for p in self.phases for s in p.steps]


def _by_id(items: list[T], wanted: str, what: str) -> T:
    for item in items:
        if getattr(item, "id", None) == wanted:
            return item
    raise KeyError(f"no {what} {wanted!r}")


def item_id(task_id: str, index: int) -> str:
    """Checklist items are addressed as `task_id.N` (N from 1); the id goes into Slack option values."""
    return f"{task_id}.{index + 1}"
