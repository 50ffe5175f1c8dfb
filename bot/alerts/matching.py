"""Map an alert to one of the runbook's trigger rules, or say why it maps to none.

Candidates are gathered by these rules, in this order (within a rule, in the runbook's trigger order):

1. a `rollbot_trigger` or `trigger` label (or annotation) naming a trigger id: only that trigger. An unknown id
   in `rollbot_trigger` (ours alone) is refused; in `trigger` (a common label of other uses) it is passed over;
2. the alert name in a trigger's `match.alertnames` (case-insensitive);
3. every one of a trigger's `match.labels` present on the alert with an equal value;
4. a `metric` label (or annotation) equal to a trigger's `condition.metric`.

The value is converted into the trigger's unit first (`bot/core/units.py`: 0.03 ratio is 3 %, 0.8 s is 800 ms). The
first candidate whose condition accepts the value wins; a candidate without a condition, or an alert without a
value, passes (the monitoring system already judged it). When several candidates of one rule pass, the alert's
`severity` label picks the level (critical: the runbook's first level, warning: its second, info: its third).
When several triggers share a metric (error rate > 1 % urgent, 0.5-1 % consideration), the value picks the level.

A trigger the alert names explicitly (rules 1 and 2) is the runbook's word that this alert matters: when no
candidate's condition holds, it still matches, with a note that the value is below (or could not be compared).
Resolved alerts skip the value check: they must find their trigger so the engine can note the recovery.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.alerts.model import NormalizedAlert
from bot.core import units
from bot.runbook.model import Comparison, Condition, Trigger

Rule = Literal["rollbot_trigger", "alertname", "labels", "metric"]
TRIGGER_LABEL = "rollbot_trigger"
TRIGGER_LABELS = (TRIGGER_LABEL, "trigger")
METRIC_LABEL = "metric"
UNIT_LABEL = "unit"
SEVERITY_LABEL = "severity"
EXPLICIT_RULES: tuple[Rule, ...] = ("rollbot_trigger", "alertname")

# Severity words monitoring systems use -> rank among the runbook's levels (0 = the most severe).
SEVERITY_RANK = {
    "critical": 0, "crit": 0, "page": 0, "emergency": 0, "fatal": 0, "p1": 0, "sev1": 0, "disaster": 0,
    "high": 1, "error": 1, "major": 1, "warning": 1, "warn": 1, "p2": 1, "sev2": 1,
    "medium": 2, "minor": 2, "low": 2, "info": 2, "p3": 2, "sev3": 2, "p4": 2, "none": 2,
}


@dataclass(frozen=True)
class Match:
    """The alert maps to `trigger_id`; `reason` says how, for the timeline.

    `reading` is the value as compared ('0.03 ratio = 3 %'), `below` is set when an explicitly named trigger
    matched although its condition did not hold, and `note` then says so in words.
    """

    trigger_id: str
    level: str
    scenario: str | None
    reason: str
    rule: Rule = "alertname"
    reading: str | None = None
    below: bool = False
    note: str | None = None

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class NoMatch:
    """The alert maps to no trigger; `reason` is meant for the sender (and the stored alert).

    `outcome` is `unmatched` when no trigger applies at all, `refused` when triggers applied but the value met none.
    """

    reason: str
    outcome: Literal["unmatched", "refused"] = "unmatched"

    def __bool__(self) -> bool:  # so `if match_trigger(...)` reads naturally
        return False


def dedup_key(trigger_id: str) -> str:
    """The key under which at most one open incident may exist for a trigger (the store enforces uniqueness)."""
    return f"trigger:{trigger_id}"


def describe(condition: Condition) -> str:
    """`payment_failure_rate > 2 %`, `error_rate between 0.5 and 1 %`."""
    unit = f"{'' if condition.unit == '%' else ' '}{condition.unit}" if condition.unit else ""
    if condition.op == Comparison.between:
        return f"{condition.metric} between {condition.threshold:g} and {condition.upper:g}{unit}"
    return f"{condition.metric} {condition.op.value} {condition.threshold:g}{unit}"


def severity_rank(alert: NormalizedAlert) -> int | None:
    severity = alert.label(SEVERITY_LABEL)
    return SEVERITY_RANK.get(severity.strip().lower()) if severity else None


def match_trigger(alert: NormalizedAlert, triggers: Sequence[Trigger], levels: Sequence[str] = ()) -> Match | NoMatch:
    """`levels`: the runbook's level ids, most severe first (default: in the order the triggers use them)."""
    order = list(levels) or list(dict.fromkeys(t.level for t in triggers))
    passed_over = ""
    for label in TRIGGER_LABELS:
        explicit = alert.label(label)
        if explicit is None:
            continue
        chosen = [t for t in triggers if t.id == explicit.strip()]
        if chosen:
            return _judge(alert, [(chosen[0], "rollbot_trigger", f"label {label}={chosen[0].id}")], order)
        if label == TRIGGER_LABEL:
            known = ", ".join(t.id for t in triggers) or "none"
            return NoMatch(f"label {TRIGGER_LABEL}={explicit!r} names no trigger of this runbook (known: {known})")
        passed_over = f"label {label}={explicit!r} names no trigger of this runbook"
    candidates = _candidates(alert, triggers)
    if not candidates:
        return NoMatch("; ".join(filter(None, [_nothing_matched(alert), passed_over])))
    return _judge(alert, candidates, order)


Candidate = tuple[Trigger, Rule, str]


def _candidates(alert: NormalizedAlert, triggers: Sequence[Trigger]) -> list[Candidate]:
    found: list[Candidate] = []
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


@dataclass(frozen=True)
class _Verdict:
    holds: bool
    evidence: str
    reading: str | None = None


def _verdict(alert: NormalizedAlert, condition: Condition | None) -> _Verdict:
    if condition is None:
        return _Verdict(True, "the trigger has no measurable condition")
    if not alert.firing:
        return _Verdict(True, "resolved alert, value not checked")
    if alert.value is None:
        return _Verdict(True, f"no value to check against {describe(condition)}")
    try:
        reading = units.read(alert.value, condition.unit, unit_label=alert.label(UNIT_LABEL),
                             value_text=alert.label("value"), metric=alert.label(METRIC_LABEL),
                             alert_unit=condition.alert_unit)
    except units.UnitMismatch as exc:
        return _Verdict(False, f"value {alert.value:g} cannot be compared with {describe(condition)} ({exc})")
    shown = reading.describe(condition.unit)
    if condition.holds(reading.value):
        return _Verdict(True, f"value {shown} meets {describe(condition)}", shown)
    assumed = (f" (the alert gives no unit: read as {condition.unit}; add a `unit` label if it is another)"
               if reading.unit is None and condition.unit else "")
    return _Verdict(False, f"value {shown} does not meet {describe(condition)}{assumed}", shown)


def _judge(alert: NormalizedAlert, candidates: list[Candidate], order: Sequence[str]) -> Match | NoMatch:
    verdicts = [(c, _verdict(alert, c[0].condition)) for c in candidates]
    passing = [(c, v) for c, v in verdicts if v.holds]
    if passing:
        first_rule = passing[0][0][1]
        same_rule = [(c, v) for c, v in passing if c[1] == first_rule]
        (trigger, rule, how), verdict = _by_severity(alert, same_rule, order)
        reason = f"{how}; {verdict.evidence}"
        if len(same_rule) > 1 and (trigger, rule, how) != same_rule[0][0]:
            reason += f"; severity {alert.label(SEVERITY_LABEL)} picks the {trigger.level} level"
        return Match(trigger.id, trigger.level, trigger.scenario, reason, rule, verdict.reading)
    explicit = [(c, v) for c, v in verdicts if c[1] in EXPLICIT_RULES]
    if explicit:
        (trigger, rule, how), verdict = explicit[0]
        note = f"{verdict.evidence}: opened anyway, because the runbook names this alert"
        return Match(trigger.id, trigger.level, trigger.scenario, f"{how}; {note}", rule, verdict.reading,
                     below=True, note=note)
    return NoMatch("; ".join(v.evidence for _c, v in verdicts), outcome="refused")


def _by_severity(alert: NormalizedAlert, passing: list[tuple[Candidate, _Verdict]],
                 order: Sequence[str]) -> tuple[Candidate, _Verdict]:
    rank = severity_rank(alert)
    if rank is None or len(passing) == 1:
        return passing[0]

    def distance(item: tuple[Candidate, _Verdict]) -> int:
        level = item[0][0].level
        return abs((order.index(level) if level in order else len(order)) - rank)

    return min(passing, key=distance)  # min keeps the first of equals: the runbook's order breaks ties


def _nothing_matched(alert: NormalizedAlert) -> str:
    reasons = [f"alert {alert.name!r} matches no trigger of this runbook: no {TRIGGER_LABEL} or trigger label",
               "the name is in no trigger's match.alertnames",
               "no trigger's match.labels are all present"]
    metric = alert.label(METRIC_LABEL)
    reasons.append(f"metric {metric!r} is no trigger's condition metric" if metric else f"no {METRIC_LABEL} label")
    return ", ".join(reasons)
