"""Parsers on hand-made payloads: the values each source yields, and malformed bodies refused with the bad field named
(AlertParseError, a ValueError, never KeyError/TypeError)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.alerts import AlertParseError
from bot.alerts.parsers import (
    PARSERS,
    parse,
    parse_alertmanager,
    parse_datadog,
    parse_generic,
    parse_grafana,
    parse_pagerduty,
)


def am_body(**alert_overrides: Any) -> dict[str, Any]:
    alert = {
        "status": "firing",
        "labels": {"alertname": "PaymentFailureRateHigh", "metric": "payment_failure_rate", "value": "3.4"},
        "annotations": {"summary": "3.4% of payments fail"},
        "startsAt": "2024-05-01T10:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prom:9090/graph",
        "fingerprint": "f00d",
    }
    alert.update(alert_overrides)
    return {"version": "4", "groupKey": "{}:{}", "status": "firing", "receiver": "rollbot", "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": [alert]}


def pd_body(event_type: str = "incident.triggered", **data_overrides: Any) -> dict[str, Any]:
    data = {"id": "PINC1", "type": "incident", "title": "Payments down", "number": 7, "urgency": "high",
            "html_url": "https://acme.pagerduty.com/incidents/PINC1", "created_at": "2024-05-01T10:00:00Z",
            "service": {"id": "PSVC", "summary": "Payments"}, "priority": {"summary": "P1"}}
    data.update(data_overrides)
    return {"event": {"id": "E1", "event_type": event_type, "resource_type": "incident",
                      "occurred_at": "2024-05-01T10:00:01Z", "data": data}}


DD_FULL = {
    "id": "7001", "title": "[P1] [Triggered on {env:prod}] Payment failure rate", "body": "%%%\nFailures at 3.4%\n%%%",
    "event_type": "query_alert_monitor", "date": "1714557600000", "last_updated": "1714557600000",
    "org": {"id": "1", "name": "Acme"}, "alert_id": "123", "aggreg_key": "9bd4ac31", "alert_transition": "Triggered",
    "alert_type": "error", "alert_title": "Payment failure rate", "alert_metric": "payment_failure_rate",
    "alert_scope": "env:prod", "alert_priority": "P1", "tags": "env:prod, service:payments, critical",
    "link": "https://app.datadoghq.com/event/event?id=7001", "value": "3.4",
}


# --- what good payloads yield ------------------------------------------------------------------------------


def test_alertmanager_reads_value_label_time_and_url() -> None:
    [alert] = parse_alertmanager(am_body())
    assert alert.value == 3.4
    assert alert.starts_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert alert.url == "http://prom:9090/graph"
    assert alert.summary == "3.4% of payments fail"


def test_alertmanager_value_may_come_from_an_annotation_with_a_percent_sign() -> None:
    labels = {"alertname": "PaymentFailureRateHigh"}
    [alert] = parse_alertmanager(am_body(labels=labels, annotations={"value": " 3.4 % "}))
    assert alert.value == 3.4


def test_alertmanager_without_fingerprint_hashes_sorted_labels_stably() -> None:
    a = am_body()
    del a["alerts"][0]["fingerprint"]
    b = copy.deepcopy(a)
    b["alerts"][0]["labels"] = dict(reversed(list(b["alerts"][0]["labels"].items())))
    c = copy.deepcopy(a)
    c["alerts"][0]["labels"]["host"] = "other"
    [fa], [fb], [fc] = parse_alertmanager(a), parse_alertmanager(b), parse_alertmanager(c)
    assert fa.fingerprint == fb.fingerprint != fc.fingerprint
    assert len(fa.fingerprint) == 16


def test_alertmanager_resolved_alert_and_zero_start_time() -> None:
    [alert] = parse_alertmanager(am_body(status="resolved", startsAt="0001-01-01T00:00:00Z"))
    assert alert.status == "resolved" and not alert.firing
    assert alert.starts_at is None


def test_grafana_value_ref_and_value_string() -> None:
    alert = {"status": "firing", "labels": {"alertname": "ErrorRate"}, "annotations": {"value_ref": "C"},
             "values": {"B": 0.7, "C": 12.5}}
    assert parse_grafana({"alerts": [alert]})[0].value == 12.5
    by_string = {"status": "firing", "labels": {"alertname": "ErrorRate"},
                 "valueString": "[ var='B' labels={service=pay} value=2.75 ], [ var='C' labels={service=pay} value=1 ]"}
    assert parse_grafana({"alerts": [by_string]})[0].value == 2.75


def test_grafana_ambiguous_values_give_no_value_rather_than_a_guess() -> None:
    alert = {"status": "firing", "labels": {"alertname": "X"}, "values": {"A": 3.0, "B": 7.0, "C": 1}}
    assert parse_grafana({"alerts": [alert]})[0].value is None


def test_pagerduty_reopened_is_firing_and_labels_carry_service_and_priority() -> None:
    [alert] = parse_pagerduty(pd_body("incident.reopened"))
    assert alert.status == "firing"
    assert alert.labels["service"] == "Payments" and alert.labels["priority"] == "P1"
    assert alert.labels["incident_number"] == "7"


@pytest.mark.parametrize("event_type", ["incident.acknowledged", "incident.annotated", "service.updated"])
def test_pagerduty_other_event_types_are_ignored(event_type: str) -> None:
    body = pd_body(event_type)
    body["event"]["data"] = {"whatever": True}  # not read for ignored events
    assert parse_pagerduty(body) == []


def test_datadog_full_template_payload() -> None:
    [alert] = parse_datadog(DD_FULL)
    assert (alert.status, alert.name, alert.fingerprint) == ("firing", "Payment failure rate", "9bd4ac31")
    assert alert.value == 3.4
    assert alert.labels["metric"] == "payment_failure_rate"
    assert alert.labels["service"] == "payments" and alert.labels["critical"] == ""
    assert alert.summary == "Failures at 3.4%"
    assert alert.starts_at == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert alert.url == "https://app.datadoghq.com/event/event?id=7001"


def test_datadog_default_payload_status_from_title_and_stable_fingerprint() -> None:
    """Datadog's default payload (no alert_* keys): the title prefix decides the status, and firing and
    recovered notifications of one monitor share a fingerprint even though Datadog's event id differs."""
    base = {"body": "CPU high", "last_updated": "1714557600000", "event_type": "metric_alert_monitor",
            "date": "1714557600000", "org": {"id": "1", "name": "Acme"}}
    [fired] = parse_datadog(base | {"id": "1", "title": "[Triggered on {host:a}] CPU high"})
    [recovered] = parse_datadog(base | {"id": "2", "title": "[P2] [Recovered on {host:a}] CPU high"})
    assert (fired.status, recovered.status) == ("firing", "resolved")
    assert fired.name == recovered.name == "CPU high"
    assert fired.fingerprint == recovered.fingerprint


@pytest.mark.parametrize(("transition", "status"), [("Recovered", "resolved"), ("Re-Triggered", "firing"),
                                                    ("No Data", "firing"), ("Warn", "firing")])
def test_datadog_transitions(transition: str, status: str) -> None:
    assert parse_datadog(DD_FULL | {"alert_transition": transition})[0].status == status


def test_generic_single_and_array() -> None:
    one = {"name": "PaymentFailureRateHigh", "status": "firing", "labels": {"metric": "payment_failure_rate"},
           "value": 3.4, "url": "https://g/d"}
    [alert] = parse_generic(one)
    assert (alert.source, alert.value, alert.summary, alert.url) == ("generic", 3.4, "PaymentFailureRateHigh", "https://g/d")
    both = parse_generic([one, one | {"status": "resolved", "fingerprint": "k1"}])
    assert [a.status for a in both] == ["firing", "resolved"]
    assert both[0].fingerprint == alert.fingerprint and both[1].fingerprint == "k1"


def test_parse_dispatches_by_source_and_refuses_unknown_sources() -> None:
    assert parse("alertmanager", am_body())[0].source == "alertmanager"
    with pytest.raises(AlertParseError, match="unknown alert source 'nagios'"):
        parse("nagios", {})


def test_as_dict_is_json_ready() -> None:
    [alert] = parse_alertmanager(am_body())
    assert alert.as_dict()["starts_at"] == "2024-05-01T10:00:00+00:00"
    assert alert.as_dict()["labels"]["metric"] == "payment_failure_rate"


# --- malformed payloads ------------------------------------------------------------------------------------


def _without(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


MALFORMED: list[tuple[str, Any, str, str]] = [
    # (source, body, field named, words in the message)
    ("alertmanager", [], "", "must be a JSON object, got an array"),
    ("alertmanager", "text", "", "got a string"),
    ("alertmanager", _without(am_body(), "version"), "version", "is required"),
    ("alertmanager", am_body() | {"version": "3"}, "version", "must be '4'"),
    ("alertmanager", am_body() | {"version": 4}, "version", "got 4"),
    ("alertmanager", _without(am_body(), "alerts"), "alerts", "is required"),
    ("alertmanager", am_body() | {"alerts": {"a": 1}}, "alerts", "must be an array"),
    ("alertmanager", am_body() | {"alerts": ["x"]}, "alerts[0]", "must be a JSON object"),
    ("alertmanager", am_body(status="pending"), "alerts[0].status", '"firing" or "resolved"'),
    ("alertmanager", am_body(status=None), "alerts[0].status", "must be a string, got null"),
    ("alertmanager", am_body(labels=["a"]), "alerts[0].labels", "must be an object of strings"),
    ("alertmanager", am_body(labels={"alertname": 5}), "alerts[0].labels.alertname", "must be a string"),
    ("alertmanager", am_body(annotations="x"), "alerts[0].annotations", "object of strings"),
    ("alertmanager", am_body(labels={"alertname": "A", "value": "high"}), "alerts[0].labels.value",
     "'high' is not a number"),
    ("alertmanager", am_body(labels={"alertname": "A", "value": "nan"}), "alerts[0].labels.value",
     "not a finite number"),
    ("alertmanager", am_body(startsAt="yesterday"), "alerts[0].startsAt", "not an RFC 3339 time"),
    ("alertmanager", am_body(fingerprint=12), "alerts[0].fingerprint", "must be a string"),
    ("alertmanager", am_body() | {"commonLabels": []}, "commonLabels", "object of strings"),
    ("grafana", {"title": "x", "ruleId": 1, "evalMatches": []}, "", "legacy Grafana alerting payload"),
    ("grafana", {"receiver": "x"}, "alerts", "is required"),
    ("grafana", {"alerts": [{"status": "firing", "labels": {}, "values": [1]}]}, "alerts[0].values",
     "must be a JSON object"),
    ("grafana", {"alerts": [{"status": "firing", "labels": {}, "values": {"B": "x"}}]}, "alerts[0].values.B",
     "not a number"),
    ("grafana", {"alerts": [{"status": "firing", "labels": {"value_ref": "Z"}, "values": {"B": 1.5}}]},
     "alerts[0].values", "value_ref names 'Z'"),
    ("grafana", {"alerts": [{"labels": {}}]}, "alerts[0].status", "is required"),
    ("pagerduty", {"event": "incident.triggered"}, "event", "must be a JSON object, got a string"),
    ("pagerduty", {"event": {"data": {}}}, "event.event_type", "is required"),
    ("pagerduty", {"event": {"event_type": ""}}, "event.event_type", "must not be empty"),
    ("pagerduty", _without(pd_body(), "event", "data"), "event.data", "is required"),
    ("pagerduty", pd_body(id=None), "event.data.id", "must be a string, got null"),
    ("pagerduty", _without(pd_body(), "event", "data", "title"), "event.data.title", "is required"),
    ("pagerduty", pd_body(service="Payments"), "event.data.service", "must be a JSON object"),
    ("pagerduty", pd_body(number="7"), "event.data.number", "must be an integer"),
    ("pagerduty", pd_body(created_at="soon"), "event.data.created_at", "not an RFC 3339 time"),
    ("datadog", ["x"], "", "must be a JSON object"),
    ("datadog", {"title": "[Triggered] X", "body": "b"}, "id", "not a Datadog notification"),
    ("datadog", DD_FULL | {"title": "", "alert_title": None}, "title", "needs a name"),
    ("datadog", DD_FULL | {"alert_transition": "Exploded"}, "alert_transition", "unknown transition 'Exploded'"),
    ("datadog", {"id": "1", "title": "CPU high"}, "alert_transition", "cannot tell whether"),
    ("datadog", DD_FULL | {"status": "ok"}, "status", '"firing" or "resolved"'),
    ("datadog", DD_FULL | {"tags": {"env": "prod"}}, "tags", "comma-separated string or an array"),
    ("datadog", DD_FULL | {"alert_title": ["x"]}, "alert_title", "must be a string"),
    ("datadog", DD_FULL | {"value": "lots"}, "value", "'lots' is not a number"),
    ("datadog", DD_FULL | {"date": "tuesday"}, "date", "not a number"),
    ("datadog", DD_FULL | {"org": {"id": "$ORG_ID"}}, "org.id", "template variable $ORG_ID"),
    ("generic", {"status": "firing"}, "name", "is required"),
    ("generic", {"name": "  ", "status": "firing"}, "name", "must not be empty"),
    ("generic", {"name": "X"}, "status", "is required"),
    ("generic", {"name": "X", "status": "FIRING"}, "status", '"firing" or "resolved"'),
    ("generic", {"name": "X", "stauts": "firing"}, "stauts", "unknown key"),
    ("generic", {"name": "X", "status": "firing", "labels": {"a": 1}}, "labels.a", "must be a string"),
    ("generic", {"name": "X", "status": "firing", "value": True}, "value", "got a boolean"),
    ("generic", {"name": "X", "status": "firing", "value": [1]}, "value", "got an array"),
    ("generic", {"name": "X", "status": "firing", "fingerprint": ""}, "fingerprint", "must not be empty"),
    ("generic", {"name": "X", "status": "firing", "url": 3}, "url", "must be a string"),
    ("generic", [], "", "must not be empty"),
    ("generic", [{"name": "X", "status": "firing"}, 5], "[1]", "must be a JSON object"),
    ("generic", None, "", "got null"),
]


@pytest.mark.parametrize(("source", "body", "field", "words"), MALFORMED,
                         ids=[f"{c[0]}-{c[2] or 'body'}-{i}" for i, c in enumerate(MALFORMED)])
def test_malformed_payload_raises_alert_parse_error_naming_the_field(source: str, body: Any, field: str,
                                                                      words: str) -> None:
    with pytest.raises(AlertParseError) as caught:
        PARSERS[source](body)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert caught.value.to_json() == {"error": "malformed alert payload", "field": field,
                                      "detail": caught.value.problem}


def test_every_source_has_malformed_cases() -> None:
    assert {case[0] for case in MALFORMED} == set(PARSERS)


def test_alertmanager_missing_labels_is_refused() -> None:
    body = am_body()
    del body["alerts"][0]["labels"]
    with pytest.raises(AlertParseError, match=r"^alerts\[0\]\.labels: is required$"):
        parse_alertmanager(body)


# --- robustness: any wrong type anywhere ---------------------------------------------------------------------

_WRONG = [None, 0, 1.5, True, "x", "", [], {}, ["x"], {"k": "v"}]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    body = copy.deepcopy(body)
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return body


_GOOD = {
    "alertmanager": am_body(),
    "grafana": {"alerts": [{"status": "firing", "labels": {"alertname": "A", "value_ref": "B"},
                            "annotations": {}, "values": {"B": 2.5}, "valueString": "[ var='B' labels={} value=2.5 ]",
                            "panelURL": "", "fingerprint": "g"}], "commonLabels": {}},
    "pagerduty": pd_body(),
    "datadog": DD_FULL,
    "generic": {"name": "X", "status": "firing", "summary": "s", "labels": {"a": "b"}, "annotations": {"c": "d"},
                "value": 1, "fingerprint": "f", "url": "u", "starts_at": "2024-05-01T10:00:00Z"},
}


@pytest.mark.parametrize("source", sorted(_GOOD))
def test_any_value_of_any_type_at_any_path_gives_alerts_or_alert_parse_error(source: str) -> None:
    """Replace every field of a good payload, one at a time, by values of every JSON type: the parser returns a
    list or raises AlertParseError, never KeyError/TypeError/AttributeError."""
    parser = PARSERS[source]
    assert parser(_GOOD[source]), "the good payload itself parses to alerts"
    tried = refusals = 0
    for path in _paths(_GOOD[source]):
        for new in _WRONG:
            tried += 1
            try:
                result = parser(_replaced(_GOOD[source], path, new))
            except AlertParseError:
                refusals += 1
            else:
                assert isinstance(result, list)
    assert tried > 50 and refusals > 0


def test_normalized_alerts_are_immutable_and_hashable() -> None:
    [a] = parse_alertmanager(am_body())
    [b] = parse_alertmanager(am_body())
    assert a == b and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.status = "resolved"  # type: ignore[misc]
