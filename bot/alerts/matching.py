"""Map an alert to one of the runbook's trigger rules, or say why it maps to none.

Candidates are gathered by these rules, in this order (within a rule, in the runbook's trigger order):

1. a `rollbot_trigger` label (or annotation) naming a trigger id: only that trigger; an unknown id is refused;
2. the alert name in a trigger's `match.alertnames` (case-insensitive);
3. every one of a trigger's `match.labels` present on the alert with an equal value;
4. a `metric` label (or annotation) equal to a trigger's `condition.metric`.

The first candidate whose condition accepts the alert's value wins. A candidate without a condition, or an alert
without a value, passes (the monitoring system already judged it). Resolved alerts skip the value check: their
value is back under the threshold, yet they must still find their trigger so the engine can note the recovery.
When several triggers share a metric (error rate > 1 % urgent, 0.5-1 % consideration), the value picks the level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.alerts.model import NormalizedAlert
from bot.runbook.model import Comparison, Condition, Trigger

Rule = Literal["rollbot_trigger", "alertname", "labels", "metric"]
TRIGGER_LABEL = "rollbot_trigger"
METRIC_LABEL = "metric"


@dataclass(frozen=True)
class Match:
    """The alert maps to `trigger_id`; `reason` says how, for the timeline."""

    trigger_id: str
    level: str
    scenario: str | None
    reason: str
    rule: Rule = "alertname"

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class NoMatch:
    """The alert maps to no trigger; `reason` is meant for the sender (and the stored alert)."""

    reason: str

    def __bool__(self) -> bool:  # so `if match_trigger(...)` reads naturally
        return False


def dedup_key(trigger_id: str) -> str:
    """The key under which at most one open incident may exist for a trigger (the store enforces uniqueness)."""
    return f"trigger:{trigger_id}"


def describe(condition: Condition) -> str:
    """`payment_failure_rate > 2`, `error_rate between 0.5 and 1`."""
    if condition.op == Comparison.between:
        return f"{condition.metric} between {condition.threshold:g} and {condition.upper:g}"
    return f"{condition.metric} {condition.op.value} {condition.threshold:g}"


def match_trigger(alert: NormalizedAlert, triggers: Sequence[Trigger]) -> Match | NoMatch:
    explicit = alert.label(TRIGGER_LABEL)
    if explicit is not None:
        chosen = [t for t in triggers if t.id == explicit.strip()]
        if not chosen:
            known = ", ".join(t.id for t in triggers) or "none"
            return NoMatch(f"label {TRIGGER_LABEL}={explicit!r} names no trigger of this runbook (known: {known})")
        return _judge(alert, [(chosen[0], "rollbot_trigger", f"label {TRIGGER_LABEL}={chosen[0].id}")])
    candidates = _candidates(alert, triggers)
    if not candidates:
        return NoMatch(_nothing_matched(alert))
    return _judge(alert, candidates)


def _candidates(alert: NormalizedAlert, triggers: Sequence[Trigger]) -> list[tuple[Trigger, Rule, str]]:
    found: list[tuple[Trigger, Rule, str]] = []
    seen: set[str] = set()

    def add(trigger: Trigger, rule: Rule, how: str) -> None:
        if trigger.id not in seen:
            seen.add(trigger.id)
            found.append((trigger, rule, how))

    name = alert.name.casefold()
    for t in triggers:
        if any(name == listed.casefold() for listed in t.match.alertnames):
            add(t, "alertname", f"alert name {alert.name!r} is listed by trigger {t.id}")
    for t in triggers:
        if t.match.labels and all(alert.labels.get(k) == v for k, v in t.match.labels.items()):
            pairs = ", ".join(f"{k}={v}" for k, v in sorted(t.match.labels.items()))
            add(t, "labels", f"labels {pairs} match trigger {t.id}")
    metric = alert.label(METRIC_LABEL)
    if metric:
        for t in triggers:
            if t.condition is not None and t.condition.metric == metric:
                add(t, "metric", f"metric {metric} is the condition of trigger {t.id}")
    return found


def _judge(alert: NormalizedAlert, candidates: list[tuple[Trigger, Rule, str]]) -> Match | NoMatch:
    refusals = []
    for trigger, rule, how in candidates:
        condition = trigger.condition
        if condition is None:
            evidence = "the trigger has no measurable condition"
        elif not alert.firing:
            evidence = "resolved alert, value not checked"
        elif alert.value is None:
            evidence = f"no value to check against {describe(condition)}"
        elif condition.holds(alert.value):
            evidence = f"value {alert.value:g} meets {describe(condition)}"
        else:
            refusals.append(f"value {alert.value:g} does not meet {describe(condition)}")
            continue
        return Match(trigger.id, trigger.level, trigger.scenario, f"{how}; {evidence}", rule)
    return NoMatch("; ".join(refusals))


def _nothing_matched(alert: NormalizedAlert) -> str:
    reasons = [f"alert {alert.name!r} matches no trigger of this runbook: no {TRIGGER_LABEL} label",
               "the name is in no trigger's match.alertnames",
               "no trigger's match.labels are all present"]
    metric = alert.label(METRIC_LABEL)
    reasons.append(f"metric {metric!r} is no trigger's condition metric" if metric else f"no {METRIC_LABEL} label")
    return ", ".join(reasons)
