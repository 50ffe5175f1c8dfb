"""The Alertmanager-shaped sources: Prometheus Alertmanager (webhook v4) and Grafana unified alerting, which
sends the same shape; Grafana's value comes from its own `values` / `valueString` (bot/alerts/parsers.py)."""

from __future__ import annotations

import re
from typing import Any

from bot.alerts import _read as r
from bot.alerts.model import AlertParseError, NormalizedAlert, Source


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
