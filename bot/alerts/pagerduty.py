"""The PagerDuty source: webhook v3 incident events (bot/alerts/parsers.py says what is read)."""

from __future__ import annotations

from typing import Any

from bot.alerts import _read as r
from bot.alerts.model import AlertParseError, NormalizedAlert, Status

_PAGERDUTY_STATUS: dict[str, Status] = {
    "incident.triggered": "firing",
    "incident.reopened": "firing",
    "incident.resolved": "resolved",
}


def parse_pagerduty(body: Any) -> list[NormalizedAlert]:
    """PagerDuty webhook v3: one incident event; event types other than triggered/reopened/resolved give []."""
    doc = r.obj(body, "")
    event = r.obj(r.get(doc, "event", "", required=True), "event")
    event_type = r.required_string(event, "event_type", "event")
    status = _PAGERDUTY_STATUS.get(event_type)
    if status is None:
        return []
    data = r.obj(r.get(event, "data", "event", required=True), "event.data")
    incident_id = r.required_string(data, "id", "event.data")
    title = r.required_string(data, "title", "event.data")
    labels = {"event_type": event_type}
    service = r.get(data, "service", "event.data", required=False)
    if service is not None:
        service = r.obj(service, "event.data.service")
        r.put(labels, "service", r.string(service, "summary", "event.data.service"))
        r.put(labels, "service_id", r.string(service, "id", "event.data.service"))
    priority = r.get(data, "priority", "event.data", required=False)
    if priority is not None:
        r.put(labels, "priority", r.string(r.obj(priority, "event.data.priority"), "summary", "event.data.priority"))
    r.put(labels, "urgency", r.string(data, "urgency", "event.data"))
    r.put(labels, "incident_key", r.string(data, "incident_key", "event.data"))
    number = r.get(data, "number", "event.data", required=False)
    if number is not None:
        if isinstance(number, bool) or not isinstance(number, int):
            raise AlertParseError("event.data.number", f"must be an integer, got {r.kind(number)}")
        labels["incident_number"] = str(number)
    return [NormalizedAlert(
        source="pagerduty",
        fingerprint=incident_id,
        status=status,
        name=title,
        summary=title,
        labels=labels,
        annotations={},
        value=None,
        starts_at=r.timestamp(data, "created_at", "event.data") or r.timestamp(event, "occurred_at", "event"),
        url=r.url(r.string(data, "html_url", "event.data")),
    )]
