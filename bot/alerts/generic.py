"""The generic source: our own JSON shape, documented in bot/alerts/parsers.py."""

from __future__ import annotations

from typing import Any

from bot.alerts import _read as r
from bot.alerts.model import AlertParseError, NormalizedAlert

_GENERIC_KEYS = frozenset({"name", "status", "summary", "labels", "annotations", "value", "fingerprint", "url",
                           "starts_at"})


def parse_generic(body: Any) -> list[NormalizedAlert]:
    """Our documented JSON shape (see bot/alerts/parsers.py's docstring): one object, or an array of them."""
    if isinstance(body, list):
        if not body:
            raise AlertParseError("", "an array of alerts must not be empty")
        return [_generic_one(item, f"[{index}]") for index, item in enumerate(body)]
    return [_generic_one(body, "")]


def _generic_one(item: Any, path: str) -> NormalizedAlert:
    doc = r.obj(item, path)
    unknown = sorted(set(doc) - _GENERIC_KEYS)
    if unknown:
        raise AlertParseError(r.join(path, unknown[0]), f"unknown key (allowed: {', '.join(sorted(_GENERIC_KEYS))})")
    name = r.required_string(doc, "name", path)
    labels = r.str_map(doc, "labels", path)
    annotations = r.str_map(doc, "annotations", path)
    value = r.number(doc.get("value"), r.join(path, "value"))
    if value is None:
        value = r.label_value(labels, annotations, path)
    return NormalizedAlert(
        source="generic",
        fingerprint=r.string(doc, "fingerprint", path, nonempty=True) or r.digest(name, sorted(labels.items())),
        status=r.status(doc, "status", path),
        name=name.strip(),
        summary=(r.string(doc, "summary", path) or "").strip() or name.strip(),
        labels=labels,
        annotations=annotations,
        value=value,
        starts_at=r.timestamp(doc, "starts_at", path),
        url=r.url(r.string(doc, "url", path)),
    )
