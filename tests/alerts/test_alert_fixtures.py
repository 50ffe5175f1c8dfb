"""Every real payload in ../shared/fixtures/alerts/ parses with its source's parser, or is refused with a clear
AlertParseError when it is not a notification of that format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alert_fixture_files import (
    ALERT_FIXTURES,
    AM_CPU,
    DATADOG_TEMPLATE,
    GRAFANA,
    PD_DATA_ONLY,
    PD_PRIORITY_DOCS,
    PD_RESOLVED,
    PD_SIGNATURE_VECTOR,
    PD_SIGNED_BODY,
    PD_TRIGGERED,
    SENTRY,
    load_fixture,
)

from bot.alerts import PARSERS, AlertParseError
from bot.alerts.parsers import parse_alertmanager, parse_datadog, parse_grafana, parse_pagerduty


def test_alertmanager_fixture_gives_both_alerts_of_the_group() -> None:
    alerts = parse_alertmanager(load_fixture(AM_CPU))
    assert [a.fingerprint for a in alerts] == ["a1bc48475b20e73d", "c2ea85182f28cbd9"]
    first = alerts[0]
    assert first.source == "alertmanager"
    assert first.status == "firing"
    assert first.name == "High CPU Temperature"
    assert first.summary == "High CPU core temperature"
    assert first.labels == {"alertname": "High CPU Temperature", "host": "andromeda", "severity": "critical"}
    assert first.annotations["description"] == "CPU core temperature is 34.75C"
    assert first.value is None  # no `value` label or annotation: the temperature is only in prose
    # nanosecond RFC 3339 from Go, in UTC
    assert first.starts_at == datetime(2020, 2, 6, 0, 17, 58, 432911, tzinfo=UTC)
    assert first.url is not None and first.url.startswith("http://cobalt:9090/graph?")


def test_grafana_fixture_takes_the_measured_value_not_the_condition() -> None:
    alerts = parse_grafana(load_fixture(GRAFANA))
    assert [(a.name, a.fingerprint) for a in alerts] == [("High memory usage", "c6eadffa33fcdf37"),
                                                         ("High CPU usage", "bc97ff14869b13e3")]
    memory = alerts[0]
    assert memory.source == "grafana" and memory.status == "firing"
    assert memory.value == pytest.approx(44.23943737541908)  # B (reduce), not C (the 0/1 threshold)
    assert memory.summary == "This alert was triggered for zone us-1"
    assert memory.labels["zone"] == "us-1"
    assert memory.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)  # +02:00 converted
    assert memory.url == "https://play.grafana.org/alerting/1afz29v7z/edit"  # empty panel/dashboard URLs skipped


def test_pagerduty_triggered_fixture_is_one_firing_alert_keyed_by_incident_id() -> None:
    [alert] = parse_pagerduty(load_fixture(PD_TRIGGERED))
    assert (alert.source, alert.status, alert.fingerprint) == ("pagerduty", "firing", "PFQZPSY")
    assert alert.name == alert.summary == "Test Incident 3"
    assert alert.labels == {"event_type": "incident.triggered", "service": "pig208", "service_id": "PA2P440",
                            "urgency": "high", "incident_number": "9"}
    assert alert.url == "https://pig208.pagerduty.com/incidents/PFQZPSY"
    assert alert.starts_at == datetime(2021, 6, 4, 13, 35, 29, 781000, tzinfo=UTC)


def test_pagerduty_resolved_fixture_is_a_resolved_alert() -> None:
    [alert] = parse_pagerduty(load_fixture(PD_RESOLVED))
    assert (alert.status, alert.fingerprint, alert.name) == ("resolved", "PCPZE64", "Test Incident")


@pytest.mark.parametrize("name", [PD_PRIORITY_DOCS, PD_SIGNED_BODY])
def test_pagerduty_priority_updated_is_valid_but_ignored(name: str) -> None:
    assert parse_pagerduty(load_fixture(name)) == []


@pytest.mark.parametrize(
    ("name", "parser", "field", "words"),
    [
        (PD_SIGNATURE_VECTOR, parse_pagerduty, "event", "required"),
        (PD_DATA_ONLY, parse_pagerduty, "event", "required"),  # only event.data, no envelope
        (DATADOG_TEMPLATE, parse_datadog, "body", "template variable $EVENT_MSG"),
        (SENTRY, parse_alertmanager, "version", "required"),
    ],
)
def test_non_notification_fixture_is_refused_with_the_field_named(name: str, parser, field: str, words: str) -> None:
    with pytest.raises(AlertParseError) as caught:
        parser(load_fixture(name))
    assert caught.value.field == field
    assert words in str(caught.value)


def test_every_fixture_under_every_parser_parses_or_raises_alert_parse_error_only() -> None:
    """No KeyError/TypeError leaks whatever the body: each (fixture, parser) pair ends in a list or AlertParseError."""
    files = sorted(ALERT_FIXTURES.glob("*.json"))
    if not files:
        pytest.skip(f"no alert fixtures in {ALERT_FIXTURES}")
    outcomes: dict[tuple[str, str], str] = {}
    for path in files:
        body = json.loads(path.read_text(encoding="utf-8"))
        for source, parser in PARSERS.items():
            try:
                outcomes[(path.name, source)] = f"{len(parser(body))} alerts"
            except AlertParseError as exc:
                assert str(exc), f"{path.name} via {source}: empty error message"
                outcomes[(path.name, source)] = "refused"
    assert len(outcomes) == len(files) * len(PARSERS)
    # the sentry payload is no source's format: every parser refuses it
    if (SENTRY, "generic") in outcomes:
        assert {outcomes[(SENTRY, s)] for s in PARSERS} == {"refused"}
