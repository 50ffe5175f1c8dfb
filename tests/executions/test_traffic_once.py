"""A traffic restore is done once per incident: when the scenario's own step brought traffic to 100 %, Step 8's
restore task is done by that run (its items tick themselves, no Run button, a Run click is refused saying when it
ran and nothing starts), while a restore whose last run halted, was rolled back, was interrupted or only dry-ran
is offered again. Judged from the runs the engine recorded (bot/core/done_before.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.done_before import earlier_success
from bot.core.errors import Refused
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import item_id
from bot.slack.blocks import clock_time
from bot.store.models import ChecklistItemState, Execution, Incident
from tests.executions.conftest import HealthServer
from tests.support.harness import Harness, harness

TL = "U100TL01"
SCENARIO_STEP, SCENARIO_TASK = "s1_restore_traffic", "restore_traffic"
STEP8, STEP8_TASK, RESTORE = "traffic_restoration", "gradual_traffic_restoration", "gradual_traffic_restore"
RUNBOOK = load_runbook(DEFAULT_RUNBOOK)


async def declared_and_approved(h: Harness) -> Incident:
    """A complete-system-failure incident whose rollback was approved (set directly: the vote is tested elsewhere)."""
    await h.command("U500OC01", "start complete_system_failure --level immediate site down")
    await h.settle()
    incident = await h.only_incident()
    assert incident.scenario_id == "complete_system_failure"
    async with h.bot.db.session() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None
        row.decision = "approved"
    return await h.only_incident()


async def restores(h: Harness, incident_id: str) -> list[Execution]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(Execution).where(
            Execution.incident_id == incident_id, Execution.action_id == RESTORE))).all())


async def run_scenario_restore(h: Harness, incident: Incident) -> Execution:
    await h.bot.executions.request(incident.id, SCENARIO_STEP, SCENARIO_TASK, RESTORE, TL)
    await h.bot.executions.idle()
    await h.settle()
    await h.bot.executions.idle()
    [row] = await restores(h, incident.id)
    return row


async def step8_ticked(h: Harness, incident_id: str) -> set[str]:
    async with h.bot.db.session() as session:
        return {r.item_id for r in (await session.exec(select(ChecklistItemState).where(
            ChecklistItemState.incident_id == incident_id, ChecklistItemState.step_id == STEP8,
            ChecklistItemState.checked == True))).all()}  # noqa: E712


def step8_message(h: Harness, incident: Incident) -> dict[str, Any]:
    [message] = [m for m in h.messages(incident.channel_id or "") if m["text"].endswith("Step 8: Traffic Restoration")]
    return message


@pytest.fixture(autouse=True)
def fast_scripts(monkeypatch: pytest.MonkeyPatch, health: HealthServer) -> None:
    monkeypatch.delenv("ROLLBOT_PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("ROLLBOT_SCRIPT_SPEED", "200")
    monkeypatch.setenv("ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK", health.url)


async def test_a_restore_to_100_done_by_the_scenario_step_closes_step_8s_restore_and_refuses_a_second_run(
        tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await declared_and_approved(h)
        first = await run_scenario_restore(h, incident)
        assert first.state == "succeeded" and [s["percent"] for s in first.data["stages"]] == [25, 50, 75, 100]
        task = h.bot.svc.runbook.step(STEP8).tasks[1]
        assert task.id == STEP8_TASK
        assert await step8_ticked(h, incident.id) == {item_id(task.id, i) for i in range(len(task.items))}, \
            "every item of Step 8's restore task ticks itself: the earlier run did it"
        assert not await step8_ticked(h, incident.id) & {item_id("internal_testing", i) for i in range(5)}, \
            "the other task of Step 8 is still the people's"

        when = clock_time(first.finished_at.replace(tzinfo=UTC) if first.finished_at else datetime.now(UTC))
        why = (f"Gradual traffic restoration already brought traffic to 100 % at {when} (Step 5.5: Restore traffic "
               f"gradually, run by <@{TL}>). Running it again would first send traffic back to 25 %, so nothing was "
               "started")
        with pytest.raises(Refused) as refused:
            await h.bot.executions.request(incident.id, STEP8, STEP8_TASK, RESTORE, TL)
        assert str(refused.value).startswith(why)

        # Step 8's message (posted when its phase starts; rendered here) offers no Run for it and says why.
        await h.bot.warroom.post_step(await h.bot.svc.snapshot(incident.id), STEP8)
        await h.settle()
        message = step8_message(h, incident)
        blocks = json.dumps(message["blocks"], ensure_ascii=False)
        assert f"run_action|{STEP8_TASK}" not in blocks
        assert f"already brought traffic to 100 % at {when}" in blocks and "this task is done by that run" in blocks

        # A Run click on a message drawn before (the sandbox no longer shows the button) meets what the Run
        # handler checks before opening the form: refused in words, at click time.
        ctx = await h.bot.executions.context(incident.id, STEP8, STEP8_TASK, RESTORE)
        with pytest.raises(Refused) as at_click:
            h.bot.executions.gate(ctx)
        assert str(at_click.value).startswith(why)
        assert [r.id for r in await restores(h, incident.id)] == [first.id], "nothing new ran: traffic stays at 100 %"


async def test_a_restore_that_halted_is_not_done_and_step_8_offers_and_runs_it(
        tmp_path: Path, health: HealthServer) -> None:
    health.fail_from = 2  # the 50 % stage's probe fails: the restore halts there
    async with harness(tmp_path) as h:
        incident = await declared_and_approved(h)
        first = await run_scenario_restore(h, incident)
        assert first.state == "failed" and first.data["traffic_result"] == "halted"
        assert not await step8_ticked(h, incident.id)
        await h.bot.warroom.post_step(await h.bot.svc.snapshot(incident.id), STEP8)
        await h.settle()
        assert f"run_action|{STEP8_TASK}" in json.dumps(step8_message(h, incident)["blocks"])
        health.fail_from = 10**9
        requested = await h.bot.executions.request(incident.id, STEP8, STEP8_TASK, RESTORE, TL)
        assert requested.created, "a failed earlier run proves nothing: the restore runs"


def _row(n: int, state: str, data: dict[str, Any], *, dry_run: bool = False, started: bool = True) -> Execution:
    at = datetime(2026, 1, 1, 12, n, tzinfo=UTC)
    return Execution(id=f"ex-{n}", incident_id="inc", step_id=SCENARIO_STEP, task_id=SCENARIO_TASK, action_id=RESTORE,
                     attempt=n, idempotency_key=f"k{n}", state=state, dry_run=dry_run, requested_by=TL,
                     requested_at=at, started_at=at if started else None, finished_at=at, data=data)


COMPLETED = {"traffic_result": "completed", "values": {"percentage": "25"}, "typed": {},
             "stages": [{"percent": p, "verdict": "passed"} for p in (25, 50, 75, 100)]}
RESUMED = {**COMPLETED, "stages": [{"percent": p, "verdict": "passed"} for p in (75, 100)]}
ROLLED_BACK = {"mode": "rollback", "to": 50, "stages": [{"percent": 50, "verdict": None}]}


@pytest.mark.parametrize(("rows", "done"), [
    ([_row(1, "succeeded", COMPLETED)], "ex-1"),
    ([_row(1, "failed", {"traffic_result": "halted", "at": 75}), _row(2, "succeeded", RESUMED)], "ex-2"),
    ([_row(1, "succeeded", COMPLETED), _row(2, "succeeded", ROLLED_BACK)], None),
    ([_row(1, "succeeded", COMPLETED), _row(2, "interrupted", {})], None),
    ([_row(1, "succeeded", COMPLETED), _row(2, "running", {})], None),
    ([_row(1, "succeeded", {"plans": ["…"]}, dry_run=True)], None),
    ([_row(1, "succeeded", COMPLETED), _row(2, "cancelled", {}, started=False)], "ex-1"),
    ([_row(1, "succeeded", {**COMPLETED, "stages": [{"percent": 25, "verdict": "passed"}]})], None),
], ids=["full restore", "resumed to 100", "rolled back later", "interrupted later", "running again",
        "dry run", "cancelled before it ran",
        "stopped short of 100"])
def test_which_runs_count_as_traffic_already_restored(rows: list[Execution], done: str | None) -> None:
    row = earlier_success(RUNBOOK.action(RESTORE), rows)
    assert (row.id if row else None) == done


def test_only_the_same_parameters_have_the_same_effect() -> None:
    action = RUNBOOK.action(RESTORE)
    rows = [_row(1, "succeeded", COMPLETED)]
    assert earlier_success(action, rows, values={"percentage": "50"}) is rows[0], "each stage sets its own percentage"
    assert earlier_success(RUNBOOK.action("critical_function_test"), rows) is None, "only a staged restore is judged"
