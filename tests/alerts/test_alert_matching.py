"""Mapping alerts to runbook triggers: each rule in its order, the threshold refusal, the level chosen by value
when triggers share a metric, and real fixtures (the CPU-temperature alert matches nothing unless a trigger names it)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
import yaml
from alert_fixture_files import AM_CPU, PD_TRIGGERED, REPO, load_fixture

from bot.alerts import Match, NoMatch, NormalizedAlert, dedup_key, match_trigger
from bot.alerts.parsers import parse_alertmanager, parse_pagerduty
from bot.runbook.model import Runbook, Trigger


def trigger(id: str, level: str, condition: dict[str, Any] | None = None, scenario: str | None = None,
            alertnames: list[str] | None = None, labels: dict[str, str] | None = None) -> Trigger:
    return Trigger.model_validate({
        "id": id, "level": level, "title": id.replace("_", " "), "description": "test trigger",
        "condition": condition, "scenario": scenario,
        "match": {"alertnames": alertnames or [], "labels": labels or {}},
    })


TRIGGERS = [
    trigger("payment_failure", "immediate", {"metric": "payment_failure_rate", "op": ">", "threshold": 2},
            scenario="payment", alertnames=["PaymentFailureRateHigh"]),
    trigger("high_error_rate", "urgent", {"metric": "error_rate", "op": ">", "threshold": 1, "for_minutes": 10}),
    trigger("moderate_error_rate", "consideration",
            {"metric": "error_rate", "op": "between", "threshold": 0.5, "upper": 1, "for_minutes": 20}),
    trigger("auth_failure", "immediate", labels={"service": "auth", "severity": "critical"}),
    trigger("system_down", "immediate", {"metric": "downtime_minutes", "op": ">", "threshold": 5},
            scenario="complete_failure", alertnames=["SiteDown"]),
]


def alert(name: str = "Something", status: str = "firing", value: float | None = None,
          labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> NormalizedAlert:
    return NormalizedAlert(source="generic", fingerprint="fp", status=status, name=name, summary=name,  # type: ignore[arg-type]
                           labels=labels or {}, annotations=annotations or {}, value=value)


def matched(result: Match | NoMatch) -> Match:
    assert isinstance(result, Match), f"expected a match, got {result}"
    return result


def refused(result: Match | NoMatch) -> NoMatch:
    assert isinstance(result, NoMatch), f"expected no match, got {result}"
    assert not result
    return result


# --- each rule ------------------------------------------------------------------------------------------------


def test_rule1_rollbot_trigger_label_names_the_trigger() -> None:
    m = matched(match_trigger(alert("Anything", labels={"rollbot_trigger": "system_down"}), TRIGGERS))
    assert (m.trigger_id, m.level, m.scenario, m.rule) == ("system_down", "immediate", "complete_failure",
                                                           "rollbot_trigger")
    assert "label rollbot_trigger=system_down" in m.reason


def test_rule1_wins_over_an_alertname_listed_elsewhere() -> None:
    a = alert("PaymentFailureRateHigh", labels={"rollbot_trigger": "auth_failure"})
    assert matched(match_trigger(a, TRIGGERS)).trigger_id == "auth_failure"


def test_rule1_may_be_an_annotation() -> None:
    a = alert("X", annotations={"rollbot_trigger": "auth_failure"})
    assert matched(match_trigger(a, TRIGGERS)).trigger_id == "auth_failure"


def test_rule1_unknown_trigger_id_is_refused_and_lists_known_ids() -> None:
    no = refused(match_trigger(alert("PaymentFailureRateHigh", labels={"rollbot_trigger": "nope"}), TRIGGERS))
    assert "rollbot_trigger='nope' names no trigger" in no.reason
    assert "payment_failure" in no.reason


def test_rule2_alertname_case_insensitive() -> None:
    m = matched(match_trigger(alert("paymentfailurerateHIGH"), TRIGGERS))
    assert (m.trigger_id, m.level, m.scenario, m.rule) == ("payment_failure", "immediate", "payment", "alertname")
    assert "no value to check against payment_failure_rate > 2" in m.reason


def test_rule3_all_match_labels_must_be_present_and_equal() -> None:
    m = matched(match_trigger(alert("AuthErrors", labels={"service": "auth", "severity": "critical", "x": "y"}),
                              TRIGGERS))
    assert (m.trigger_id, m.rule) == ("auth_failure", "labels")
    assert "the trigger has no measurable condition" in m.reason
    refused(match_trigger(alert("AuthErrors", labels={"service": "auth"}), TRIGGERS))
    refused(match_trigger(alert("AuthErrors", labels={"service": "auth", "severity": "warning"}), TRIGGERS))


def test_rule4_metric_label() -> None:
    m = matched(match_trigger(alert("Whatever", value=3.4, labels={"metric": "payment_failure_rate"}), TRIGGERS))
    assert (m.trigger_id, m.rule) == ("payment_failure", "metric")
    assert "value 3.4 meets payment_failure_rate > 2" in m.reason


def test_rules_apply_in_order_alertname_before_labels_before_metric() -> None:
    a = alert("SiteDown", labels={"service": "auth", "severity": "critical", "metric": "payment_failure_rate"})
    assert matched(match_trigger(a, TRIGGERS)).trigger_id == "system_down"
    b = alert("Other", labels={"service": "auth", "severity": "critical", "metric": "payment_failure_rate"})
    assert matched(match_trigger(b, TRIGGERS)).trigger_id == "auth_failure"


# --- thresholds ------------------------------------------------------------------------------------------------


def test_value_below_threshold_of_a_listed_alert_name_still_matches_and_says_it_is_below() -> None:
    m = matched(match_trigger(alert("PaymentFailureRateHigh", value=0.8), TRIGGERS))
    assert (m.trigger_id, m.below) == ("payment_failure", True)
    assert m.note is not None and m.note.startswith("value 0.8 does not meet payment_failure_rate > 2")
    assert "opened anyway, because the runbook names this alert" in m.note


def test_explicit_trigger_label_opens_even_below_the_value() -> None:
    a = alert("X", value=2.0, labels={"rollbot_trigger": "payment_failure"})
    m = matched(match_trigger(a, TRIGGERS))
    assert (m.trigger_id, m.rule, m.below) == ("payment_failure", "rollbot_trigger", True)
    assert "value 2 does not meet payment_failure_rate > 2" in m.reason


def test_value_below_every_condition_found_by_metric_is_refused_not_unmatched() -> None:
    no = refused(match_trigger(alert("ErrorRate", value=0.3, labels={"metric": "error_rate"}), TRIGGERS))
    assert no.outcome == "refused"
    assert refused(match_trigger(alert("Nothing"), TRIGGERS)).outcome == "unmatched"


@pytest.mark.parametrize(("value", "trigger_id", "level"), [(1.7, "high_error_rate", "urgent"),
                                                            (0.7, "moderate_error_rate", "consideration"),
                                                            (1.0, "moderate_error_rate", "consideration")])
def test_shared_metric_value_picks_the_level(value: float, trigger_id: str, level: str) -> None:
    m = matched(match_trigger(alert("ErrorRate", value=value, labels={"metric": "error_rate"}), TRIGGERS))
    assert (m.trigger_id, m.level) == (trigger_id, level)


def test_value_meeting_no_candidate_lists_every_condition() -> None:
    no = refused(match_trigger(alert("ErrorRate", value=0.3, labels={"metric": "error_rate"}), TRIGGERS))
    assert no.reason == "value 0.3 does not meet error_rate > 1; value 0.3 does not meet error_rate between 0.5 and 1"


def test_resolved_alert_finds_its_trigger_whatever_its_value() -> None:
    m = matched(match_trigger(alert("PaymentFailureRateHigh", status="resolved", value=0.1), TRIGGERS))
    assert m.trigger_id == "payment_failure"
    assert "resolved alert" in m.reason


# --- fixtures and the default runbook ------------------------------------------------------------------------


def test_cpu_temperature_fixture_matches_no_trigger_and_says_why() -> None:
    for a in parse_alertmanager(load_fixture(AM_CPU)):
        no = refused(match_trigger(a, TRIGGERS))
        assert "'High CPU Temperature' matches no trigger" in no.reason
        assert "no metric label" in no.reason


def test_cpu_temperature_fixture_matches_a_trigger_that_names_it() -> None:
    naming = [*TRIGGERS, trigger("resource_exhaustion", "urgent", alertnames=["high cpu temperature"])]
    for a in parse_alertmanager(load_fixture(AM_CPU)):
        m = matched(match_trigger(a, naming))
        assert (m.trigger_id, m.level, m.rule) == ("resource_exhaustion", "urgent", "alertname")


def test_pagerduty_fixture_matches_by_service_label() -> None:
    [a] = parse_pagerduty(load_fixture(PD_TRIGGERED))
    refused(match_trigger(a, TRIGGERS))
    by_service = [*TRIGGERS, trigger("pd_pig", "urgent", labels={"service": "pig208"})]
    assert matched(match_trigger(a, by_service)).trigger_id == "pd_pig"


def test_empty_trigger_list_matches_nothing() -> None:
    refused(match_trigger(alert("PaymentFailureRateHigh", value=3.4), []))


def test_dedup_key_is_per_trigger() -> None:
    assert dedup_key("payment_failure") == "trigger:payment_failure"
    assert dedup_key("payment_failure") != dedup_key("system_down")


DEFAULT_RUNBOOK = REPO / "runbooks" / "bookedbarber-v2.yml"


@pytest.fixture
def default_runbook() -> Runbook:
    if not DEFAULT_RUNBOOK.is_file():
        pytest.skip(f"{DEFAULT_RUNBOOK.relative_to(REPO)} is not written yet")
    return Runbook.model_validate(yaml.safe_load(DEFAULT_RUNBOOK.read_text(encoding="utf-8")))


def test_default_runbook_payment_trigger_matches_an_alertmanager_payment_alert(default_runbook: Runbook) -> None:
    body = {"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "fingerprint": "pay1",
        "labels": {"alertname": "PaymentFailureRateHigh", "metric": "payment_failure_rate", "value": "3.4"},
        "annotations": {"summary": "3.4% of payments fail"}}]}
    [a] = parse_alertmanager(body)
    m = matched(match_trigger(a, default_runbook.triggers))
    payment = default_runbook.trigger(m.trigger_id)
    assert payment.condition is not None and payment.condition.metric == "payment_failure_rate"
    assert m.level == payment.level == "immediate"  # the seed: payment failure > 2% is an immediate trigger
    assert m.scenario == payment.scenario is not None
    # the same alert under the threshold still opens (the runbook names it), saying the value is below
    below = matched(match_trigger(replace(a, value=0.8), default_runbook.triggers))
    assert below.below and below.note is not None
    assert below.note.startswith("value 0.8% does not meet payment_failure_rate > 2%")


def test_default_runbook_refuses_the_cpu_temperature_fixture(default_runbook: Runbook) -> None:
    names = {n.casefold() for t in default_runbook.triggers for n in t.match.alertnames}
    if "high cpu temperature" in names:
        pytest.skip("the default runbook now names the CPU-temperature alert")
    for a in parse_alertmanager(load_fixture(AM_CPU)):
        assert "matches no trigger" in refused(match_trigger(a, default_runbook.triggers)).reason


@pytest.mark.parametrize(("value", "level"), [(1.7, "urgent"), (0.7, "consideration")])
def test_default_runbook_error_rate_level_follows_the_value(default_runbook: Runbook, value: float,
                                                              level: str) -> None:
    """`HighErrorRate` at 0.7 % fails the > 1 % urgent rule but its metric label finds the 0.5-1 % rule."""
    a = alert("HighErrorRate", value=value, labels={"metric": "error_rate"})
    assert matched(match_trigger(a, default_runbook.triggers)).level == level
