"""A staged traffic restore with the real traffic script and a real HTTP check: every stage is followed by its
check; a failed check halts at that stage (later stages never run) with what to roll back to and continue to;
an unreachable check pauses; Cancel stops it between or during stages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from actions.check import CheckSpec
from actions.result import Outcome
from actions.runner import ActionRunner
from bot.executions.specs import check_spec, prepare, scripts_base, stage_spec
from bot.executions.traffic import StagedRun
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from tests.executions.conftest import HealthServer

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
BASE = scripts_base(DEFAULT_RUNBOOK, RUNBOOK)
ACTION = RUNBOOK.action("gradual_traffic_restore")
FAST = {"ROLLBOT_SCRIPT_SPEED": "200"}


def _run(check: CheckSpec | None, cancel: asyncio.Event | None = None,
         hanging: asyncio.Event | None = None) -> tuple[StagedRun, list[str]]:
    prepared = prepare(ACTION, BASE, datetime.now(UTC))
    lines: list[str] = []

    async def on_line(line: str) -> None:
        lines.append(line)
        if hanging is not None and "hanging in child sleep" in line:
            hanging.set()

    staged = StagedRun(ActionRunner(), "ex-t", lambda pct: stage_spec(prepared, BASE, pct, env_extra=FAST)[0], check,
                       secrets=(), on_line=on_line, cancel=cancel or asyncio.Event(), monotonic=lambda: 0.0,
                       max_output_bytes=64 * 1024)
    return staged, lines


def _check(url: str) -> CheckSpec:
    return check_spec(RUNBOOK.action("traffic_health_check"), {"ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK": url})


async def test_every_stage_passes_its_check_and_traffic_reaches_100(health: HealthServer) -> None:
    staged, lines = _run(_check(health.url))
    result, data = await staged.run(ACTION.stages, ACTION.stages)
    assert result.outcome is Outcome.SUCCEEDED and data["traffic_result"] == "completed"
    assert [s["percent"] for s in data["stages"]] == [25, 50, 75, 100]
    assert health.probes == [200, 200, 200, 200]
    assert any("Routing 100% of traffic" in line for line in lines)


async def test_a_failed_check_at_50_halts_there_and_75_never_runs(health: HealthServer) -> None:
    health.fail_from = 2  # the second probe, after the 50 % stage
    staged, lines = _run(_check(health.url))
    result, data = await staged.run(ACTION.stages, ACTION.stages)
    assert result.outcome is Outcome.FAILED
    assert data["traffic_result"] == "halted" and data["at"] == 50
    assert data["rollback_to"] == 25 and data["next_stage"] == 75
    assert [(s["percent"], s["verdict"]) for s in data["stages"]] == [(25, "passed"), (50, "failed")]
    assert health.probes == [200, 503]
    assert any("Routing 50% of traffic" in line for line in lines)
    assert not any("Routing 75%" in line or "Routing 100%" in line for line in lines)


async def test_an_unreachable_check_pauses_rather_than_continues() -> None:
    staged, lines = _run(_check("http://127.0.0.1:9/health"))  # nothing listens on port 9
    result, data = await staged.run(ACTION.stages, ACTION.stages)
    assert result.outcome is Outcome.FAILED and data["traffic_result"] == "paused" and data["at"] == 25
    assert data["rollback_to"] is None and not any("Routing 50%" in line for line in lines)


async def test_resuming_runs_only_the_remaining_stages(health: HealthServer) -> None:
    staged, _ = _run(_check(health.url))
    result, data = await staged.run([75, 100], ACTION.stages)
    assert result.ok and [s["percent"] for s in data["stages"]] == [75, 100] and len(health.probes) == 2


async def test_a_failing_traffic_script_halts_with_its_exit_code(health: HealthServer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ROLLBOT_FAIL", "gradual-traffic-restore")
    staged, _ = _run(_check(health.url))
    result, data = await staged.run(ACTION.stages, ACTION.stages)
    assert result.outcome is Outcome.FAILED and result.exit_code == 3
    assert data["traffic_result"] == "halted" and data["at"] == 25 and health.probes == []


async def test_cancel_stops_a_hanging_stage(health: HealthServer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ROLLBOT_HANG", "gradual-traffic-restore")
    cancel, hanging = asyncio.Event(), asyncio.Event()
    staged, _ = _run(_check(health.url), cancel, hanging)
    task = asyncio.create_task(staged.run(ACTION.stages, ACTION.stages))
    async with asyncio.timeout(10):
        await hanging.wait()
    staged.cancel()
    result, _ = await task
    assert result.outcome is Outcome.CANCELLED and health.probes == []
