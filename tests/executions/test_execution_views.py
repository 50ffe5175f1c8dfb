"""The execution message says who, what, parameters, elapsed time and the last lines, then the result in words;
its buttons follow the state (Cancel while running, Retry/Skip on failure, the traffic choices when halted);
every message and the Run modal are valid Block Kit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.executions.views import (
    CANCEL,
    RETRY,
    SCENARIO_RUN,
    SKIP,
    TRAFFIC_CONTINUE,
    TRAFFIC_RETRY,
    TRAFFIC_ROLLBACK,
    ExecutionView,
    ParamField,
    RunModal,
    ScenarioStepLine,
    execution_blocks,
    execution_text,
    modal_values,
    run_modal,
    scenario_blocks,
)
from bot.store.models import Execution
from tests.support.blockkit import schema_errors

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def _ex(state: str, **kw: Any) -> Execution:
    values: dict[str, Any] = dict(id="ex-1", incident_id="inc-1", step_id="application_rollback",
                                  action_id="rollback_application", idempotency_key="k", state=state,
                                  requested_by="U200DO01", requested_at=T0, params={"version": "v2.3.1"},
                                  argv=["./launch/scripts/rollback-application.sh", "--version", "v2.3.1"],
                                  output="line 1\nline 2\nrollback-application: DONE", data={"kind": "shell"})
    values.update(kw)
    return Execution(**values)


def _render(ex: Execution, **kw: Any) -> tuple[str, list[dict[str, Any]]]:
    view = ExecutionView(execution=ex, action_title="Execute application rollback",
                         step_label="Step 5: Application Rollback", **kw)
    blocks = [b.to_dict() for b in execution_blocks(view)]
    assert schema_errors(blocks) == []
    return execution_text(view), blocks


def _buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_running_shows_who_what_parameters_elapsed_and_last_lines_with_cancel() -> None:
    text, blocks = _render(_ex("running"), last_lines=("deploying v2.3.1", "pods 3/5 ready"), elapsed_s=75)
    shown = str(blocks)
    assert "<@U200DO01>" in shown and "Version `v2.3.1`" in shown and "1m15s" in shown and "pods 3/5 ready" in shown
    assert "./launch/scripts/rollback-application.sh --version v2.3.1" in shown
    assert _buttons(blocks) == [CANCEL]
    assert "running" in text


@pytest.mark.parametrize(("state", "kw", "phrase"), [
    ("succeeded", {"duration_s": 133.0, "exit_code": 0}, "succeeded in 2m13s"),
    ("failed", {"duration_s": 4.0, "exit_code": 3}, "failed with exit 3"),
    ("timed_out", {"duration_s": 60.0}, "timed out"),
    ("interrupted", {}, "interrupted"),
    ("cancelled", {"cancel_requested_by": "U100TL01", "duration_s": 2.0}, "cancelled by <@U100TL01>"),
])
def test_results_are_said_in_words(state: str, kw: dict[str, Any], phrase: str) -> None:
    text, blocks = _render(_ex(state, **kw))
    assert phrase in text and phrase in str(blocks)


def test_failures_offer_retry_and_skip_and_success_offers_nothing() -> None:
    for state in ("failed", "timed_out", "cancelled", "interrupted"):
        assert _buttons(_render(_ex(state, exit_code=3))[1]) == [RETRY, SKIP]
    assert _buttons(_render(_ex("succeeded", exit_code=0))[1]) == []


def test_a_halted_traffic_restore_offers_rollback_retry_and_continue() -> None:
    ex = _ex("failed", action_id="gradual_traffic_restore", data={
        "kind": "shell", "traffic_result": "halted", "at": 50, "rollback_to": 25, "next_stage": 75,
        "stages": [{"percent": 25, "verdict": "passed", "reason": "status 200 in 3 ms"},
                   {"percent": 50, "verdict": "failed", "reason": "status 503, expected 200"}]})
    text, blocks = _render(ex, deciders="Technical Lead: <@U100TL01>")
    assert _buttons(blocks) == [TRAFFIC_ROLLBACK, TRAFFIC_RETRY, TRAFFIC_CONTINUE, SKIP]
    assert "halted at 50%" in text and "Halted at 50%" in str(blocks) and "✅ 25%" in str(blocks)


def test_a_dry_run_says_nothing_ran_and_shows_the_command() -> None:
    text, blocks = _render(_ex("succeeded", dry_run=True, output="[rollbot] dry run, would run: x"))
    assert "nothing was run" in text and "Would run" in str(blocks)


def test_output_with_backticks_cannot_break_out_of_the_code_block() -> None:
    _, blocks = _render(_ex("failed", exit_code=1, output="```\n*bold* <!channel>```"))
    assert str(blocks).count("```") == 4  # command and output blocks, each opened and closed once


def test_the_run_modal_is_valid_and_reads_back_its_values() -> None:
    modal = run_modal(RunModal(incident_id="inc-1", step_id="s", task_id="t", action_id="rollback_application",
                               channel="C1", action_title="Execute application rollback", step_label="Step 5",
                               command="./launch/scripts/rollback-application.sh --version v2.3.1",
                               fields=(ParamField(name="version", label="version", initial="v2.3.1", hint="pattern"),),
                               needs_approval="Technical Lead + Database Admin", danger="destructive"))
    view = modal.to_dict()
    assert schema_errors(view["blocks"]) == []
    assert view["submit"]["text"] == "Request approval"
    state = {"param|version": {"value": {"type": "plain_text_input", "value": " v2.3.0 "}},
             "mode": {"dry_run": {"type": "checkboxes", "selected_options": [{"value": "dry_run"}]}}}
    assert modal_values(state) == ({"version": "v2.3.0"}, True)


def test_the_scenario_message_offers_run_scenario_until_started() -> None:
    lines = [ScenarioStepLine(1, "Enable maintenance mode", "active", "Divert traffic", None),
             ScenarioStepLine(2, "Stop writes", "pending", None)]
    before = [b.to_dict() for b in scenario_blocks("Complete System Failure", "rollback_execution", lines, started_by=None)]
    after = [b.to_dict() for b in scenario_blocks("Complete System Failure", "rollback_execution", lines,
                                                  started_by="U100TL01", waiting_for="Waiting for Step 2.")]
    assert schema_errors(before) == [] and schema_errors(after) == []
    assert _buttons(before) == [SCENARIO_RUN] and _buttons(after) == []
    assert "_by hand_" in str(before) and "Waiting for Step 2." in str(after)
