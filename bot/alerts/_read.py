"""Typed readers over decoded JSON: each returns the wanted type or raises AlertParseError naming the field.

Shared by the source parsers (alertmanager, pagerduty, datadog, generic), with `put` for their optional labels.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.alerts.model import AlertParseError, Status
from bot.core import units

_MISSING = object()


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def kind(value: Any) -> str:
    """JSON's name for a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AlertParseError(path, f"must be a JSON object, got {kind(value)}")
    return value


def get(d: Mapping[str, Any], key: str, path: str, *, required: bool) -> Any:
    value = d.get(key, _MISSING)
    if value is _MISSING:
        if required:
            raise AlertParseError(join(path, key), "is required")
        return None
    return value


def string(d: Mapping[str, Any], key: str, path: str, *, required: bool = False, nonempty: bool = False) -> str | None:
    value = get(d, key, path, required=required)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise AlertParseError(join(path, key), f"must be a string, got {kind(value)}")
    if nonempty and not value.strip():
        raise AlertParseError(join(path, key), "must not be empty")
    return value


def required_string(d: Mapping[str, Any], key: str, path: str) -> str:
    """A present, non-empty string."""
    value = string(d, key, path, required=True, nonempty=True)
    assert value is not None  # string() raised otherwise; this only narrows the type
    return value


def array(d: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> list[Any]:
    value = get(d, key, path, required=required)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise AlertParseError(join(path, key), f"must be an array, got {kind(value)}")
    return value


def str_map(d: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> dict[str, str]:
    """An object of string values (labels, annotations); null counts as empty when not required."""
    value = get(d, key, path, required=required)
    if value is None and not required:
        return {}
    where = join(path, key)
    if not isinstance(value, dict):
        raise AlertParseError(where, f"must be an object of strings, got {kind(value)}")
    for k, v in value.items():
        if not isinstance(v, str):
            raise AlertParseError(join(where, k), f"must be a string, got {kind(v)}")
    return dict(value)


def status(d: Mapping[str, Any], key: str, path: str) -> Status:
    value = string(d, key, path, required=True)
    if value == "firing":
        return "firing"
    if value == "resolved":
        return "resolved"
    raise AlertParseError(join(path, key), f'must be "firing" or "resolved", got {value!r}')


def number(value: Any, path: str) -> float | None:
    """A metric value: a JSON number or a numeric string (a known unit may follow); null or "" is no value."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AlertParseError(path, "must be a number, got a boolean")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        # A unit may follow the number ("3.4%", "800ms"); matching reads it again to convert (bot/core/units.py).
        m = units.VALUE_WITH_UNIT.match(value)
        if m is not None and (not m["unit"] or units.known(m["unit"])):
            result = float(m["number"])
        else:
            try:
                result = float(value)  # NaN, +Inf: refused below as not finite
            except ValueError:
                raise AlertParseError(path, f"{value!r} is not a number (a known unit may follow it, e.g. 3.4%, "
                                            "800ms)") from None
    else:
        raise AlertParseError(path, f"must be a number, got {kind(value)}")
    if not math.isfinite(result):
        raise AlertParseError(path, f"{value!r} is not a finite number")
    return result


def label_value(labels: Mapping[str, str], annotations: Mapping[str, str], path: str) -> float | None:
    """The `value` label, else the `value` annotation, as a number."""
    if "value" in labels:
        return number(labels["value"], join(join(path, "labels"), "value"))
    if "value" in annotations:
        return number(annotations["value"], join(join(path, "annotations"), "value"))
    return None


def timestamp(d: Mapping[str, Any], key: str, path: str) -> datetime | None:
    """An RFC 3339 time in UTC; Go's zero time (0001-01-01) and absence mean unknown."""
    value = string(d, key, path)
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise AlertParseError(join(path, key), f"{value!r} is not an RFC 3339 time") from None
    if parsed.year <= 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch(value: Any, path: str, *, millis: bool) -> datetime | None:
    seconds = number(value, path)
    if seconds is None:
        return None
    if millis:
        seconds /= 1000
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise AlertParseError(path, f"{value!r} is not a valid epoch time") from None


def digest(*parts: Any) -> str:
    """A stable short key from JSON-able parts (used where the source gives no fingerprint)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def url(*candidates: str | None) -> str | None:
    for candidate in candidates:
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def put(labels: dict[str, str], key: str, value: str | None) -> None:
    """Set a label only when the source gave it a value (PagerDuty's and Datadog's optional fields)."""
    if value:
        labels[key] = value
