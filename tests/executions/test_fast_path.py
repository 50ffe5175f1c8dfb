"""The fastest safe path to the rollback, end to end through the sandbox with the default runbook: the snapshot
starts by itself the moment the rollback is approved, the configuration backup after it succeeds, the
scenario's rollback step is offered at once, and the rollback's Run is refused, saying why, until the
snapshot has succeeded. The runbook checks refuse a `start_when` or `requires` naming no action."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.core.errors import Refused
from bot.decision.views import APPROVE
from bot.executions.requests import AUTO, runs_without_form
from bot.runbook.loader import DEFAULT_RUNBOOK, RunbookError, load_runbook
from bot.runbook.model import item_id
from bot.store.models import ChecklistItemState, Execution, Incident
from tests.decision.support import click
from tests.support.harness import Harness, harness

TL1 = "U100TL01"
DO1 = "U200DO01"


async def declare_payment(h: Harness) -> Incident:
    delivery = await h.command("U500OC01", "start payment_system --level immediate payments failing")
    assert delivery["status"] == 200
    await h.settle()
    incident = await h.only_incident()
    assert incident.scenario_id == "payment_system" and incident.channel_id
    return incident


async def runs(h: Harness, incident_id: str) -> list[Execution]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(Execution).where(Execution.incident_id == incident_id)
                                        .order_by(col(Execution.requested_at), col(Execution.id)))).all())


async def test_approval_starts_the_snapshot_then_the_backup_and_offers_the_rollback_run(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await declare_payment(h)
        assert [r.action_id for r in await runs(h, incident.id) if r.action_id == "emergency_db_snapshot"] == []
        await click(h, incident, "decision", TL1, APPROVE)
        await h.settle()
        await h.bot.executions.idle()
        await h.settle()
        ran = [(r.action_id, r.state, r.requested_by) for r in await runs(h, incident.id)
               if r.action_id in ("emergency_db_snapshot", "backup_current_config")]
        assert sorted(ran) == [("backup_current_config", "succeeded", AUTO), ("emergency_db_snapshot", "succeeded", AUTO)], \
            "the snapshot starts on approval, the backup once the snapshot succeeded (the next test), nobody clicking"
        async with h.bot.db.session() as session:
            ticked = {i.item_id for i in (await session.exec(select(ChecklistItemState).where(
                ChecklistItemState.incident_id == incident.id, ChecklistItemState.step_id == "system_state_preservation",
                ChecklistItemState.checked == True))).all()}  # noqa: E712
        step = h.bot.svc.runbook.phases[1].steps[0]
        verify = step.tasks[0].items.index("Verify backup completion")
        assert item_id("database_state_capture", verify) in ticked, "the snapshot's success ticks Verify backup completion"
        # The scenario's rollback step is in the channel with its Run button, before Steps 1-4 are closed.
        assert incident.channel_id
        texts = {m["text"]: m for m in h.messages(incident.channel_id)}
        rollback_step = next(m for t, m in texts.items() if "Step 5.3: Rollback payment configuration" in t)
        assert "run_action|rollback_payment_config" in str(rollback_step["blocks"])
        requested = await h.bot.executions.request(incident.id, "s4_rollback_payment_config", "rollback_payment_config",
                                                   "payment_rollback", DO1)
        assert requested.created and requested.execution.action_id == "payment_rollback"


async def test_the_rollback_is_refused_saying_why_until_the_snapshot_has_succeeded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBOT_FAIL", "emergency-db-snapshot")
    async with harness(tmp_path) as h:
        incident = await declare_payment(h)
        await click(h, incident, "decision", TL1, APPROVE)
        await h.settle()
        await h.bot.executions.idle()
        await h.settle()
        [snapshot] = [r for r in await runs(h, incident.id) if r.action_id == "emergency_db_snapshot"]
        assert snapshot.state == "failed"
        assert not [r for r in await runs(h, incident.id) if r.action_id == "backup_current_config"], \
            "the backup waits for a snapshot that succeeded"
        with pytest.raises(Refused) as refused:
            await h.bot.executions.request(incident.id, "s4_rollback_payment_config", "rollback_payment_config",
                                           "payment_rollback", DO1)
        assert "Payment system rollback can run only after Create emergency database snapshot" in str(refused.value)
        assert "Retry it first" in str(refused.value)
        assert not [r for r in await runs(h, incident.id) if r.action_id == "payment_rollback"], "nothing recorded"

        monkeypatch.delenv("ROLLBOT_FAIL")
        await h.bot.executions.retry(snapshot.id, DO1)
        await h.bot.executions.idle()
        await h.settle()
        await h.bot.executions.idle()
        assert [r.state for r in await runs(h, incident.id) if r.action_id == "backup_current_config"] == ["succeeded"]
        requested = await h.bot.executions.request(incident.id, "s4_rollback_payment_config", "rollback_payment_config",
                                                   "payment_rollback", DO1)
        assert requested.created


async def test_in_a_complete_system_failure_the_maintenance_page_goes_up_on_approval(tmp_path: Path) -> None:
    """A scenario step's `start_when` starts its action like a task's: nobody clicks Run for Step 5.1, so the
    application rollback is the next click."""
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start complete_system_failure --level immediate everything is down")
        await h.settle()
        incident = await h.only_incident()
        assert [r for r in await runs(h, incident.id) if r.action_id == "enable_maintenance_mode"] == []
        await click(h, incident, "decision", TL1, APPROVE)
        await h.settle()
        await h.bot.executions.idle()
        await h.settle()
        ran = [(r.step_id, r.state, r.requested_by) for r in await runs(h, incident.id)
               if r.action_id == "enable_maintenance_mode"]
        assert ran == [("s1_enable_maintenance", "succeeded", AUTO)]
        async with h.bot.db.session() as session:
            ticked = (await session.exec(select(ChecklistItemState.item_id).where(
                ChecklistItemState.incident_id == incident.id, ChecklistItemState.step_id == "s1_enable_maintenance",
                ChecklistItemState.checked == True))).all()  # noqa: E712
        assert ticked == [item_id("enable_maintenance", 0)], "its success ticks the step's one item"


def test_the_runbook_checks_refuse_a_start_when_or_requires_naming_no_action(tmp_path: Path) -> None:
    text = DEFAULT_RUNBOOK.read_text()
    text = text.replace("start_when: {succeeded: emergency_db_snapshot}", "start_when: {succeeded: no_such_action}")
    text = text.replace("action: enable_maintenance_mode,\n         start_when: {decision: approved}",
                        "action: enable_maintenance_mode,\n         start_when: {succeeded: no_such_scenario_action}")
    text = text.replace("{id: stop_writes, title: Stop database writes, minutes: 1}",
                        "{id: stop_writes, title: Stop database writes, minutes: 1, start_when: {decision: approved}}")
    text = text.replace("requires: [emergency_db_snapshot]  # never roll back without the snapshot\n",
                        "requires: [no_such_snapshot]\n", 1)
    path = DEFAULT_RUNBOOK.parent / f".test-{tmp_path.name}.yml"  # beside the scripts it names
    path.write_text(text)
    try:
        with pytest.raises(RunbookError) as refused:
            load_runbook(path)
    finally:
        path.unlink()
    said = str(refused.value)
    assert "start_when.succeeded: names undefined action 'no_such_action'" in said
    assert "scenarios[0].steps[0].start_when.succeeded: names undefined action 'no_such_scenario_action'" in said
    assert "scenarios[1].steps[0].start_when: start_when starts the action named beside it, but there is none" in said
    assert "requires[0]: names undefined action 'no_such_snapshot'" in said


def test_only_a_safe_action_with_nothing_to_type_or_ask_starts_on_the_run_click() -> None:
    """The Run form stays for anything with parameters, stages, a risk, an approval or a typed phrase."""
    runbook = load_runbook(DEFAULT_RUNBOOK)
    without = {a.id for a in runbook.actions if runs_without_form(a)}
    assert "critical_function_test" in without and "quick_health_check" in without
    for action_id in ("emergency_db_snapshot", "payment_rollback", "database_rollback", "rollback_database",
                      "gradual_traffic_restore"):
        assert action_id not in without, action_id
    for action in runbook.actions:
        if action.id in without:
            assert action.danger == "safe" and not action.params and not action.stages and not action.approval
