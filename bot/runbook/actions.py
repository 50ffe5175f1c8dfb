"""What the bot can run: actions (shell, http, check, prometheus) with their parameters and safeguards."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from bot.core import units
from bot.runbook._schema import Id, Strict
from bot.runbook.roles import Policy


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
