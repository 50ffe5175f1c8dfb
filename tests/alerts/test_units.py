"""Values are compared in the trigger's unit: a Prometheus ratio against a % threshold, seconds against ms, as the
alert's `unit` label, its value's suffix, its metric name or the trigger's `alert_unit` says; an alert name the
runbook lists opens even when its value is missing or below (with a note); a `trigger` label and `severity` count.
Built on the real Alertmanager and Grafana payloads in ../shared/fixtures/alerts/."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from alert_fixture_files import AM_CPU, GRAFANA, load_fixture

from bot.alerts import Match, NoMatch, match_trigger
from bot.alerts.parsers import parse_alertmanager, parse_grafana
from bot.core import units
from bot.runbook.model import Condition, Trigger


def trigger(id: str, level: str, condition: dict[str, Any] | None = None, alertnames: list[str] | None = None,
            labels: dict[str, str] | None = None) -> Trigger:
    return Trigger.model_validate({"id": id, "level": level, "title": id, "description": "test",
                                   "condition": condition, "match": {"alertnames": alertnames or [],
                                                                     "labels": labels or {}}})


PAYMENT = trigger("payment_failure", "immediate", {"metric": "payment_failure_rate", "op": ">", "threshold": 2,
                                                   "unit": "%"}, alertnames=["PaymentFailureRateHigh"])
LATENCY = trigger("performance_degradation", "urgent", {"metric": "api_latency_p95_ms", "op": ">", "threshold": 500,
                                                        "unit": "ms"}, alertnames=["HighLatencyP95"])
MEMORY = trigger("resource_exhaustion", "urgent", {"metric": "memory_utilization", "op": ">", "threshold": 40,
                                                   "unit": "%"}, alertnames=["High memory usage"])
AUTH = trigger("auth_failure", "immediate", alertnames=["AuthLoginFailures"])
ERRORS_URGENT = trigger("high_error_rate", "urgent", {"metric": "error_rate", "op": ">", "threshold": 1, "unit": "%"})
ERRORS_CONSIDER = trigger("moderate_error_rate", "consideration",
                          {"metric": "error_rate", "op": "between", "threshold": 0.5, "upper": 1, "unit": "%"})
TRIGGERS = [PAYMENT, AUTH, LATENCY, MEMORY, ERRORS_URGENT, ERRORS_CONSIDER]


def am_alert(name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
    """The real Alertmanager fixture's first alert, renamed and relabelled as a rule of ours would send it."""
    body = copy.deepcopy(load_fixture(AM_CPU))
    body["alerts"] = body["alerts"][:1]
    body["alerts"][0]["labels"] = {"alertname": name, "severity": "critical", **labels}
    body["alerts"][0]["annotations"].update(annotations or {})
    body["commonLabels"] = body["alerts"][0]["labels"]
    [alert] = parse_alertmanager(body)
    return alert


def matched(result: Match | NoMatch) -> Match:
    assert isinstance(result, Match), f"expected a match, got {result}"
    return result


# --- the conversion table --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "src", "dst", "expected"), [
    (0.03, "ratio", "%", 3.0), (3.0, "percent", "ratio", 0.03), (0.8, "s", "ms", 800.0), (250, "ms", "s", 0.25),
    (6, "min", "s", 360.0), (90, "seconds", "min", 1.5), (5, "%", "%", 5.0), (7, None, "ms", 7.0)])
def test_convert(value: float, src: str | None, dst: str, expected: float) -> None:
    assert units.convert(value, src, dst) == pytest.approx(expected)


def test_convert_refuses_different_quantities() -> None:
    with pytest.raises(units.UnitMismatch):
        units.convert(1, "ms", "%")


def test_condition_alert_unit_must_be_known_and_convertible() -> None:
    Condition(metric="m", op=">", threshold=2, unit="%", alert_unit="ratio")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cannot be converted"):
        Condition(metric="m", op=">", threshold=2, unit="%", alert_unit="s")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a unit rollbot knows"):
        Condition(metric="m", op=">", threshold=2, unit="%", alert_unit="furlongs")  # type: ignore[arg-type]


# --- ratio vs percent, seconds vs milliseconds -----------------------------------------------------------------


def test_prometheus_ratio_with_a_unit_label_meets_a_percent_threshold() -> None:
    alert = am_alert("PaymentFailureRateHigh", {"value": "0.03", "unit": "ratio"})
    m = matched(match_trigger(alert, TRIGGERS))
    assert (m.trigger_id, m.below) == ("payment_failure", False)
    assert m.reading == "0.03 ratio = 3%"
    assert "value 0.03 ratio = 3% meets payment_failure_rate > 2%" in m.reason


def test_a_ratio_below_the_threshold_is_below_after_conversion_too() -> None:
    alert = am_alert("PaymentFailureRateHigh", {"value": "0.015", "unit": "ratio"})
    m = matched(match_trigger(alert, TRIGGERS))
    assert m.below and m.note is not None and m.note.startswith("value 0.015 ratio = 1.5% does not meet")


def test_trigger_alert_unit_says_prometheus_sends_ratios() -> None:
    ratio_payment = PAYMENT.model_copy(update={"condition": PAYMENT.condition.model_copy(  # type: ignore[union-attr]
        update={"alert_unit": "ratio"})})
    m = matched(match_trigger(am_alert("PaymentFailureRateHigh", {"value": "0.03"}), [ratio_payment]))
    assert (m.reading, m.below) == ("0.03 ratio = 3%", False)


def test_latency_in_seconds_by_unit_annotation_is_judged_in_milliseconds() -> None:
    alert = am_alert("HighLatencyP95", {}, {"value": "0.8", "unit": "seconds"})
    m = matched(match_trigger(alert, TRIGGERS))
    assert (m.trigger_id, m.reading, m.below) == ("performance_degradation", "0.8 seconds = 800 ms", False)
    fast = am_alert("HighLatencyP95", {}, {"value": "0.3", "unit": "s"})
    assert matched(match_trigger(fast, TRIGGERS)).below  # 300 ms is under 500 ms: noted, still opened


def test_value_suffix_gives_the_unit() -> None:
    m = matched(match_trigger(am_alert("HighLatencyP95", {"value": "800ms"}), TRIGGERS))
    assert (m.reading, m.below) == ("800 ms", False)
    m = matched(match_trigger(am_alert("HighLatencyP95", {"value": "0.9s"}), TRIGGERS))
    assert (m.reading, m.below) == ("0.9 s = 900 ms", False)


def test_prometheus_metric_name_suffix_gives_the_unit() -> None:
    alert = am_alert("HighLatencyP95", {"value": "0.7", "metric": "http_request_duration_seconds"})
    assert matched(match_trigger(alert, TRIGGERS)).reading == "0.7 s = 700 ms"


def test_a_unit_of_another_kind_is_not_compared_and_is_said() -> None:
    m = matched(match_trigger(am_alert("HighLatencyP95", {"value": "3", "unit": "%"}), TRIGGERS))
    assert m.below and m.note is not None and "cannot be compared" in m.note


def test_grafana_values_with_unit_label_are_converted() -> None:
    body = load_fixture(GRAFANA)
    memory, _cpu = parse_grafana(body)  # B = 44.24 (%), C = 1 (the condition)
    m = matched(match_trigger(memory, TRIGGERS))
    assert (m.trigger_id, m.reading, m.below) == ("resource_exhaustion", "44.2394%", False)
    in_ratio = MEMORY.model_copy(update={"condition": Condition(metric="memory_utilization", op=">",  # type: ignore[arg-type]
                                                                threshold=0.5, unit="ratio")})
    body = copy.deepcopy(body)
    body["alerts"][0]["labels"]["unit"] = "percent"
    [memory, _cpu] = parse_grafana(body)
    m = matched(match_trigger(memory, [in_ratio]))
    assert m.below and m.reading == "44.2394 percent = 0.442394 ratio"


# --- listed names open regardless; the trigger label; severity ------------------------------------------------


def test_listed_alert_name_opens_without_a_value() -> None:
    m = matched(match_trigger(am_alert("PaymentFailureRateHigh", {}), TRIGGERS))
    assert (m.trigger_id, m.below, m.reading) == ("payment_failure", False, None)
    assert "no value to check against payment_failure_rate > 2%" in m.reason


def test_trigger_label_as_prometheus_rules_write_it() -> None:
    m = matched(match_trigger(am_alert("AuthFailuresSpiking", {"trigger": "auth_failure"}), TRIGGERS))
    assert (m.trigger_id, m.rule) == ("auth_failure", "rollbot_trigger")


def test_trigger_label_naming_no_trigger_falls_through_to_the_other_rules() -> None:
    m = matched(match_trigger(am_alert("AuthLoginFailures", {"trigger": "something_else"}), TRIGGERS))
    assert m.trigger_id == "auth_failure"
    no = match_trigger(am_alert("Unknown", {"trigger": "something_else"}), TRIGGERS)
    assert isinstance(no, NoMatch) and "label trigger='something_else' names no trigger" in no.reason


@pytest.mark.parametrize(("severity", "trigger_id"), [("warning", "high_error_rate"), ("info", "moderate_error_rate"),
                                                      ("critical", "high_error_rate")])
def test_severity_picks_the_level_when_a_value_cannot(severity: str, trigger_id: str) -> None:
    alert = am_alert("ErrorsUp", {"metric": "error_rate", "severity": severity})
    m = matched(match_trigger(alert, TRIGGERS, levels=["immediate", "urgent", "consideration"]))
    assert m.trigger_id == trigger_id


def test_value_below_every_metric_candidate_is_refused() -> None:
    alert = am_alert("ErrorsUp", {"metric": "error_rate", "value": "0.001", "unit": "ratio"})
    no = match_trigger(alert, TRIGGERS)
    assert isinstance(no, NoMatch) and no.outcome == "refused"
    assert "value 0.001 ratio = 0.1% does not meet error_rate > 1%" in no.reason
