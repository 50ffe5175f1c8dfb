"""Units of alert values: a ratio and a percentage, seconds and milliseconds, are the same quantity on another scale.

Prometheus sends an error rate as 0.03 (a ratio) and a latency as 0.8 (seconds) while a runbook writes `> 2 %` and
`> 500 ms`, so a value is converted into the trigger's unit before it is compared. Where the value's unit comes
from, first that says: the alert's `unit` label (or annotation), a suffix on the value itself ("3.4%", "800ms"),
the suffix of its `metric` label (Prometheus names end in `_seconds`, `_ratio`), the trigger's `alert_unit`; else
the value is taken to be in the trigger's unit already.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# unit name -> (dimension, factor to that dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {}


def _add(dimension: str, factor: float, *names: str) -> None:
    for name in names:
        _UNITS[name] = (dimension, factor)


_add("fraction", 1.0, "ratio", "fraction")
_add("fraction", 0.01, "%", "percent", "pct")
_add("fraction", 0.001, "permille", "‰")
_add("time", 1e-9, "ns", "nanoseconds")
_add("time", 1e-6, "us", "µs", "microseconds")
_add("time", 1e-3, "ms", "milliseconds")
_add("time", 1.0, "s", "sec", "second", "seconds")
_add("time", 60.0, "min", "minute", "minutes", "m")
_add("time", 3600.0, "h", "hour", "hours")
_add("bytes", 1.0, "b", "bytes")
_add("bytes", 1e3, "kb")
_add("bytes", 1e6, "mb")
_add("bytes", 1e9, "gb")

# Prometheus naming conventions (https://prometheus.io/docs/practices/naming/): the base unit is the suffix.
_METRIC_SUFFIXES = (("_ratio", "ratio"), ("_percent", "percent"), ("_seconds", "s"), ("_milliseconds", "ms"),
                    ("_ms", "ms"), ("_minutes", "min"), ("_bytes", "bytes"))

# A number with an optional unit right after it: "3.4%", "800 ms", "0.8s".
VALUE_WITH_UNIT = re.compile(r"^\s*(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[^\d\s]\S*)?\s*$")


class UnitMismatch(ValueError):
    """Two units that measure different things (a percentage and a duration)."""


def canonical(unit: str | None) -> str | None:
    """The unit's table name ('Percent' -> 'percent'), None for no unit, the text itself for an unknown unit."""
    if unit is None or not unit.strip():
        return None
    text = unit.strip()
    return text.lower() if text.lower() in _UNITS else text


def known(unit: str | None) -> bool:
    return canonical(unit) in _UNITS


def convert(value: float, from_unit: str | None, to_unit: str | None) -> float:
    """`value` in `from_unit` expressed in `to_unit`; unknown or missing units are left alone (equal or absent)."""
    a, b = canonical(from_unit), canonical(to_unit)
    if a is None or b is None or a == b:
        return value
    if a not in _UNITS or b not in _UNITS:
        raise UnitMismatch(f"cannot convert {from_unit} to {to_unit}")
    (dim_a, factor_a), (dim_b, factor_b) = _UNITS[a], _UNITS[b]
    if dim_a != dim_b:
        raise UnitMismatch(f"{from_unit} and {to_unit} measure different things")
    return value * factor_a / factor_b


def compatible(a: str | None, b: str | None) -> bool:
    try:
        convert(1.0, a, b)
    except UnitMismatch:
        return False
    return True


def unit_of_value_text(text: str | None) -> str | None:
    """The unit written after a number ('800ms' -> 'ms'), if it is one we know."""
    if not text:
        return None
    m = VALUE_WITH_UNIT.match(text)
    if m is None or not m["unit"]:
        return None
    return canonical(m["unit"]) if known(m["unit"]) else None


def unit_of_metric(metric: str | None) -> str | None:
    if not metric:
        return None
    for suffix, unit in _METRIC_SUFFIXES:
        if metric.lower().endswith(suffix):
            return unit
    return None


@dataclass(frozen=True)
class Reading:
    """An alert's value in a trigger's unit, and how its unit was known (for the timeline)."""

    value: float
    original: float
    unit: str | None  # the value's own unit, None when assumed to be the trigger's
    how: str  # "unit label", "value suffix", "metric name", "trigger alert_unit", "assumed"

    def describe(self, target_unit: str) -> str:
        """'0.03 ratio = 3 %' when converted, '3.4 %' when not."""
        shown = f"{self.value:g}{_space(target_unit)}{target_unit}".strip()
        if self.unit is None or canonical(self.unit) == canonical(target_unit) or not target_unit:
            return shown
        return f"{self.original:g} {self.unit} = {shown}"


def _space(unit: str) -> str:
    return "" if unit in ("%", "") else " "


def read(value: float, target_unit: str, *, unit_label: str | None, value_text: str | None, metric: str | None,
         alert_unit: str | None) -> Reading:
    """Convert `value` into `target_unit`; raises UnitMismatch when the alert says a unit of another kind."""
    for how, unit in (("unit label", canonical(unit_label)), ("value suffix", unit_of_value_text(value_text)),
                      ("metric name", unit_of_metric(metric)), ("trigger alert_unit", canonical(alert_unit))):
        if unit is not None:
            if not target_unit:
                return Reading(value, value, unit, how)
            return Reading(convert(value, unit, target_unit), value, unit, how)
    return Reading(value, value, None, "assumed")
