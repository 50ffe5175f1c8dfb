"""Alert payload parsers: one per source, each turning a decoded JSON body into NormalizedAlerts.

Every parser raises AlertParseError (never KeyError/TypeError) when the body is not its format, naming the field.
An empty list means "a valid notification with nothing to act on" (e.g. a PagerDuty incident.acknowledged event).

Sources and what they give:

- **alertmanager**: Prometheus Alertmanager webhook v4 (`version` must be "4"); one alert per entry of `alerts`.
  Fingerprint: the alert's `fingerprint`, else a hash of its sorted labels. Value: a `value` label or annotation.
- **grafana**: Grafana unified-alerting webhook (Alertmanager-like, `version` "1"). Value: a `value` label or
  annotation; else from `values` (refId -> number): the entry named by a `value_ref` label/annotation, the only
  entry, or the only entry that is not a 0/1 condition result; else the same from `valueString`.
- **pagerduty**: PagerDuty webhook v3 (`{"event": {...}}`). `incident.triggered` and `incident.reopened` are
  firing, `incident.resolved` is resolved, any other event type is valid and ignored (empty list).
  Fingerprint: the incident id. Labels: service, service_id, urgency, priority, incident_number, incident_key.
- **datadog**: a Datadog Webhooks integration payload. Datadog sends whatever JSON template the webhook is set
  up with; we read Datadog's default payload (`id`, `title`, `body`, `event_type`, `date`, `last_updated`, `org`)
  and these optional keys, which we recommend adding to the template::

      "alert_id": "$ALERT_ID", "aggreg_key": "$AGGREG_KEY", "alert_transition": "$ALERT_TRANSITION",
      "alert_type": "$ALERT_TYPE", "alert_title": "$ALERT_TITLE", "alert_metric": "$ALERT_METRIC",
      "alert_scope": "$ALERT_SCOPE", "alert_priority": "$ALERT_PRIORITY", "tags": "$TAGS", "link": "$LINK",
      "hostname": "$HOSTNAME", "text_only_msg": "$TEXT_ONLY_MSG", "value": <the metric value, if you have it>

  Status: `status` ("firing"/"resolved") if given, else `alert_transition` (Recovered -> resolved; Triggered,
  Re-Triggered, Warn, Re-Warn, No Data, Re-No Data, Renotify -> firing), else `alert_type` (success -> resolved,
  error/warning -> firing), else the `[Triggered]`/`[Recovered]` prefix of `title`. Fingerprint: `aggreg_key`,
  else `alert_id` (+ `alert_scope`), else a hash of the alert name. Labels: the `key:value` tags of `tags` and
  `alert_scope`, plus metric, priority, hostname, event_type, alert_type. A body still holding `$VARIABLES`
  is Datadog's template, not a notification, and is refused.
- **generic**: our own JSON shape, one alert as an object or several as an array of such objects::

      {
        "name": "PaymentFailureRateHigh",          # required, non-empty string
        "status": "firing" | "resolved",           # required
        "summary": "3.4% of payments failing",     # optional, defaults to name
        "labels": {"metric": "payment_failure_rate", "rollbot_trigger": "payment_failure"},  # optional, strings
        "annotations": {"description": "..."},     # optional, strings
        "value": 3.4,                              # optional: number, numeric string ("3.4%") or null
        "fingerprint": "pay-eu-1",                 # optional dedup key, default: hash of name and labels
        "url": "https://grafana.example/d/pay",    # optional
        "starts_at": "2024-05-01T10:00:00Z"        # optional, RFC 3339
      }

  Unknown keys are refused (a typo such as "stauts" should fail loudly, not be ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.alerts import _read as r
from bot.alerts.model import AlertParseError, NormalizedAlert, Source, Status

Parser = Callable[[Any], list[NormalizedAlert]]


def _summary(annotations: dict[str, str], common: dict[str, str], name: str) -> str:
    for source in (annotations, common):
        for key in ("summary", "description", "message"):
            if source.get(key, "").strip():
                return source[key].strip()
    return name


def _name(labels: dict[str, str], common: dict[str, str], fingerprint: str) -> str:
    return labels.get("alertname") or common.get("alertname") or f"alert {fingerprint}"


# --- Alertmanager ------------------------------------------------------------------------------------------


def parse_alertmanager(body: Any) -> list[NormalizedAlert]:
    """Prometheus Alertmanager webhook v4: every alert of the group."""
    return _alertmanager_like(body, "alertmanager", version="4")


def _alertmanager_like(body: Any, source: Source, *, version: str | None) -> list[NormalizedAlert]:
    doc = r.obj(body, "")
    if version is not None:
        got = r.get(doc, "version", "", required=True)
        if got != version:
            raise AlertParseError("version", f"must be {version!r} (webhook v{version}), got {got!r}")
    alerts = r.array(doc, "alerts", "", required=True)
    common_labels = r.str_map(doc, "commonLabels", "")
    common_annotations = r.str_map(doc, "commonAnnotations", "")
    r.string(doc, "groupKey", "")  # type-checked only: dedup is per alert
    result = []
    for index, item in enumerate(alerts):
        path = r.join("alerts", index)
        alert = r.obj(item, path)
        labels = r.str_map(alert, "labels", path, required=True)
        annotations = r.str_map(alert, "annotations", path)
        fingerprint = r.string(alert, "fingerprint", path) or r.digest(sorted(labels.items()))
        name = _name(labels, common_labels, fingerprint)
        if source == "grafana":
            value = _grafana_value(alert, labels, annotations, path)
            link = r.url(r.string(alert, "panelURL", path), r.string(alert, "dashboardURL", path),
                         r.string(alert, "generatorURL", path))
        else:
            value = r.label_value(labels, annotations, path)
            link = r.url(r.string(alert, "generatorURL", path))
        result.append(NormalizedAlert(
            source=source,
            fingerprint=fingerprint,
            status=r.status(alert, "status", path),
            name=name,
            summary=_summary(annotations, common_annotations, name),
            labels=labels,
            annotations=annotations,
            value=value,
            starts_at=r.timestamp(alert, "startsAt", path),
            url=link,
        ))
    return result


# --- Grafana -----------------------------------------------------------------------------------------------


def parse_grafana(body: Any) -> list[NormalizedAlert]:
    """Grafana unified-alerting webhook contact point: every alert of the notification."""
    doc = r.obj(body, "")
    if "alerts" not in doc and ("evalMatches" in doc or "ruleId" in doc):
        raise AlertParseError("", "this is a legacy Grafana alerting payload (ruleId/evalMatches), which is not "
                                  "supported: use a unified-alerting webhook contact point")
    return _alertmanager_like(doc, "grafana", version=None)


_VALUE_STRING = re.compile(r"\[\s*var='(?P<ref>[^']*)'.*?\bvalue=(?P<value>[^\s\]]+)\s*\]")


def _grafana_value(alert: dict[str, Any], labels: dict[str, str], annotations: dict[str, str],
                   path: str) -> float | None:
    explicit = r.label_value(labels, annotations, path)
    if explicit is not None:
        return explicit
    ref = labels.get("value_ref") or annotations.get("value_ref")
    raw_values = r.get(alert, "values", path, required=False)
    if raw_values is not None:
        where = r.join(path, "values")
        values = {k: r.number(v, r.join(where, k)) for k, v in r.obj(raw_values, where).items()}
        return _pick_value(values, ref, where)
    value_string = r.string(alert, "valueString", path)
    if value_string:
        where = r.join(path, "valueString")
        values = {m["ref"]: r.number(None if m["value"] == "null" else m["value"], f"{where}[{m['ref']}]")
                  for m in _VALUE_STRING.finditer(value_string)}
        return _pick_value(values, ref, where)
    return None


def _pick_value(values: dict[str, float | None], ref: str | None, path: str) -> float | None:
    """Grafana reports every expression's result; the alert's value is the one that is not the 0/1 condition."""
    if ref is not None:
        if ref not in values:
            raise AlertParseError(path, f"value_ref names {ref!r}, which is not among {sorted(values)}")
        return values[ref]
    present = {k: v for k, v in values.items() if v is not None}
    if len(present) == 1:
        return next(iter(present.values()))
    measured = [v for v in present.values() if v not in (0.0, 1.0)]
    return measured[0] if len(measured) == 1 else None  # ambiguous: better no value than a wrong one


# --- PagerDuty ---------------------------------------------------------------------------------------------

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
        _put(labels, "service", r.string(service, "summary", "event.data.service"))
        _put(labels, "service_id", r.string(service, "id", "event.data.service"))
    priority = r.get(data, "priority", "event.data", required=False)
    if priority is not None:
        _put(labels, "priority", r.string(r.obj(priority, "event.data.priority"), "summary", "event.data.priority"))
    _put(labels, "urgency", r.string(data, "urgency", "event.data"))
    _put(labels, "incident_key", r.string(data, "incident_key", "event.data"))
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


def _put(labels: dict[str, str], key: str, value: str | None) -> None:
    if value:
        labels[key] = value


# --- Datadog -----------------------------------------------------------------------------------------------

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
    """A Datadog webhook notification (default payload or the richer template in this module's docstring)."""
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
        _put(labels, label, fields[key])
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


# --- generic -----------------------------------------------------------------------------------------------

_GENERIC_KEYS = frozenset({"name", "status", "summary", "labels", "annotations", "value", "fingerprint", "url",
                           "starts_at"})


def parse_generic(body: Any) -> list[NormalizedAlert]:
    """Our documented JSON shape (see the module docstring): one object, or an array of them."""
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


PARSERS: dict[str, Parser] = {
    "alertmanager": parse_alertmanager,
    "grafana": parse_grafana,
    "pagerduty": parse_pagerduty,
    "datadog": parse_datadog,
    "generic": parse_generic,
}


def parse(source: str, body: Any) -> list[NormalizedAlert]:
    """Parse a decoded body from `source`; an unknown source is an AlertParseError too."""
    parser = PARSERS.get(source)
    if parser is None:
        raise AlertParseError("", f"unknown alert source {source!r} (known: {', '.join(PARSERS)})")
    return parser(body)
