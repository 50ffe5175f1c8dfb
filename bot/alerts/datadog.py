"""The Datadog source: a Webhooks integration payload (bot/alerts/parsers.py gives the template to set up)."""

from __future__ import annotations

import re
from typing import Any

from bot.alerts import _read as r
from bot.alerts.model import AlertParseError, NormalizedAlert, Status

_TEMPLATE_VARIABLE = re.compile(r"\$[A-Z][A-Z0-9_]*")
_DATADOG_TRANSITIONS: dict[str, Status] = {
    "triggered": "firing", "re-triggered": "firing", "warn": "firing", "re-warn": "firing",
    "no data": "firing", "re-no data": "firing", "renotify": "firing", "recovered": "resolved",
}
_DATADOG_TYPES: dict[str, Status] = {"error": "firing", "warning": "firing", "success": "resolved"}
# "[P1] [Triggered on {host:a}] CPU high": an optional priority, the transition (with its scope), the title.
_DATADOG_TITLE = re.compile(r"^\s*(?:\[P\d\]\s*)?\[(?P<transition>[A-Za-z -]+?)(?: on \{[^}]*\})?\]\s*(?P<rest>.*)$")
_DATADOG_KEYS = ("id", "title", "body", "event_type", "date", "date_posix", "last_updated", "alert_id", "aggreg_key",
                 "alert_cycle_key", "alert_transition", "alert_type", "alert_title", "alert_metric", "alert_scope",
                 "alert_priority", "alert_query", "alert_status", "link", "hostname", "text_only_msg", "status")


def parse_datadog(body: Any) -> list[NormalizedAlert]:
    """A Datadog webhook notification (default payload or the richer template in bot/alerts/parsers.py's docstring)."""
    doc = r.obj(body, "")
    _refuse_template(doc)
    fields = {key: _scalar_text(doc, key) for key in _DATADOG_KEYS}
    if not any(fields[key] for key in ("id", "alert_id", "aggreg_key", "alert_cycle_key")):
        raise AlertParseError("id", "is required (or alert_id / aggreg_key): without Datadog's ids this is not a "
                                    "Datadog notification")
    title = fields["title"]
    parsed_title = _DATADOG_TITLE.match(title) if title else None
    name = (fields["alert_title"] or (parsed_title["rest"] if parsed_title else title) or "").strip()
    if not name:
        raise AlertParseError("title", "is required (or alert_title): the alert needs a name")
    status = _datadog_status(fields, parsed_title)
    labels = _datadog_tags(doc, "alert_scope") | _datadog_tags(doc, "tags")
    for label, key in (("metric", "alert_metric"), ("priority", "alert_priority"), ("hostname", "hostname"),
                       ("event_type", "event_type"), ("alert_type", "alert_type")):
        r.put(labels, label, fields[key])
    annotations = {key: str(fields[key]) for key in ("alert_query", "alert_status", "alert_transition",
                                                     "alert_cycle_key") if fields[key]}
    if fields["aggreg_key"]:
        fingerprint = fields["aggreg_key"]
    elif fields["alert_id"]:
        fingerprint = fields["alert_id"] + (f"/{r.digest(fields['alert_scope'])}" if fields["alert_scope"] else "")
    else:
        fingerprint = r.digest(name)
    value = r.number(doc.get("value"), "value")
    if value is None:
        value = r.label_value(labels, {}, "")
    starts_at = (r.epoch(doc["date"], "date", millis=True) if doc.get("date") not in (None, "")
                 else r.epoch(doc.get("date_posix"), "date_posix", millis=False))
    return [NormalizedAlert(
        source="datadog",
        fingerprint=fingerprint,
        status=status,
        name=name,
        summary=_datadog_summary(fields["text_only_msg"] or fields["body"]) or name,
        labels=labels,
        annotations=annotations,
        value=value,
        starts_at=starts_at,
        url=r.url(fields["link"]),
    )]


def _refuse_template(doc: dict[str, Any], path: str = "") -> None:
    for key, value in doc.items():
        where = r.join(path, key)
        if isinstance(value, dict):
            _refuse_template(value, where)
        elif isinstance(value, str) and _TEMPLATE_VARIABLE.fullmatch(value.strip()):
            raise AlertParseError(where, f"still holds the template variable {value.strip()}: this is a Datadog "
                                         "payload template, not a notification Datadog sent")


def _scalar_text(doc: dict[str, Any], key: str) -> str | None:
    """Datadog renders every variable as text, but a hand-written template may leave numbers unquoted."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AlertParseError(key, f"must be a string, got {r.kind(value)}")
    return str(value).strip() or None


def _datadog_status(fields: dict[str, str | None], parsed_title: re.Match[str] | None) -> Status:
    explicit = fields["status"]
    if explicit is not None:
        if explicit not in ("firing", "resolved"):
            raise AlertParseError("status", f'must be "firing" or "resolved", got {explicit!r}')
        return "firing" if explicit == "firing" else "resolved"
    transition = fields["alert_transition"]
    if transition is not None:
        status = _DATADOG_TRANSITIONS.get(transition.lower())
        if status is None:
            raise AlertParseError("alert_transition", f"unknown transition {transition!r} (expected one of "
                                                      f"{', '.join(sorted(_DATADOG_TRANSITIONS))})")
        return status
    alert_type = fields["alert_type"]
    if alert_type is not None and alert_type.lower() in _DATADOG_TYPES:
        return _DATADOG_TYPES[alert_type.lower()]
    if parsed_title is not None:
        status = _DATADOG_TRANSITIONS.get(parsed_title["transition"].strip().lower())
        if status is not None:
            return status
    raise AlertParseError("alert_transition", "cannot tell whether the alert is firing or resolved: add "
                                              '"alert_transition": "$ALERT_TRANSITION" to the webhook payload')


def _datadog_tags(doc: dict[str, Any], key: str) -> dict[str, str]:
    """Datadog tags `env:prod, service:pay` (a string, or a list of strings) as labels."""
    value = doc.get(key)
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = value
    else:
        raise AlertParseError(key, f"must be a comma-separated string or an array of strings, got {r.kind(value)}")
    labels: dict[str, str] = {}
    for item in items:
        tag_key, _, tag_value = item.strip().partition(":")
        if tag_key:
            labels[tag_key] = tag_value
    return labels


def _datadog_summary(message: str | None) -> str | None:
    if not message:
        return None
    for line in message.replace("%%%", "\n").splitlines():
        if line.strip():
            return line.strip()[:300]
    return None
