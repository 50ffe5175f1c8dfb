"""What opens an incident: triggers, the measurable conditions they watch, and how alerts map to them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import model_validator

from bot.core import units
from bot.runbook._schema import Id, Strict


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
