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

from collections.abc import Callable
from typing import Any

from bot.alerts.alertmanager import parse_alertmanager, parse_grafana
from bot.alerts.datadog import parse_datadog
from bot.alerts.generic import parse_generic
from bot.alerts.model import AlertParseError, NormalizedAlert
from bot.alerts.pagerduty import parse_pagerduty

# Each source's parser lives in its own module; they are re-exported here, beside the table that names them.
__all__ = ["PARSERS", "Parser", "parse", "parse_alertmanager", "parse_datadog", "parse_generic", "parse_grafana",
           "parse_pagerduty"]

Parser = Callable[[Any], list[NormalizedAlert]]

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
