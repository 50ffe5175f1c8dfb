"""ActionRunner: concurrent executions tracked by id, cancel, dry run; and the progress throttle."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from actions.check import CheckSpec
from actions.http import HttpSpec
from actions.progress import ProgressSnapshot, ProgressThrottle
from actions.redact import Redactor
from actions.result import Outcome
from actions.runner import ActionRunner, DuplicateExecution
from actions.shell import ShellSpec
from bot.core.clock import FakeClock
from tests.actions.conftest import FAST, SCRIPTS_DIR, LocalServer, pid_alive


async def test_dry_run_returns_the_exact_argv_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    argv = ("bash", "-c", f"touch {marker}", "--version", "v2.3.1")
    runner = ActionRunner()
    lines: list[str] = []

    async def on_line(line: str) -> None:
        lines.append(line)

    result = await runner.run("exec-1", ShellSpec(argv, cwd=tmp_path), on_line=on_line, dry_run=True)
    assert result.outcome is Outcome.DRY_RUN
    assert result.plan is not None
    assert result.plan.details["argv"] == list(argv)
    assert result.plan.details["cwd"] == str(tmp_path)
    assert result.plan.command == f"bash -c 'touch {marker}' --version v2.3.1"
    assert lines == [f"[rollbot] dry run, would run: {result.plan.command}"]
    assert not marker.exists()


async def test_dry_run_of_a_request_sends_nothing(server: LocalServer) -> None:
    runner = ActionRunner()
    spec = HttpSpec("POST", f"{server.url}/ok", headers={"Authorization": "Bearer xyz12345678"})
    result = await runner.run("exec-http", spec, dry_run=True)
    await runner.shutdown()
    assert result.outcome is Outcome.DRY_RUN
    assert result.plan is not None and result.plan.command == f"POST {server.url}/ok"
    assert result.plan.details["headers"] == {"Authorization": "[REDACTED]"}
    assert server.hits["ok"] == 0


async def test_the_plan_of_a_real_run_is_recorded_with_secrets_redacted() -> None:
    runner = ActionRunner(redactor=Redactor(["settings-token-123"]))
    spec = ShellSpec(("echo", "settings-token-123", "param-secret-456"))
    result = await runner.run("exec-2", spec, secrets=["param-secret-456"])
    assert result.outcome is Outcome.SUCCEEDED
    assert result.output == "[REDACTED] [REDACTED]"
    assert result.plan is not None and result.plan.details["argv"] == ["echo", "[REDACTED]", "[REDACTED]"]


async def test_actions_run_concurrently_and_are_tracked_by_execution_id(tmp_path: Path) -> None:
    """Four actions behind a barrier: each marks itself started, then waits until all four have. They can only
    finish if they run at the same time, however slow the machine."""
    runner = ActionRunner()
    barrier = f'touch {tmp_path}/"$0"; while [ "$(ls {tmp_path} | wc -l)" -lt 4 ]; do sleep 0.01; done'
    tasks = {f"exec-{i}": runner.start(f"exec-{i}", ShellSpec(("sh", "-c", barrier, f"started-{i}")))
             for i in range(4)}
    assert sorted(runner.running()) == sorted(tasks)
    results = await asyncio.wait_for(asyncio.gather(*tasks.values()), 120)  # a hang here: they ran one by one
    assert all(r.outcome is Outcome.SUCCEEDED for r in results), [r.output for r in results]
    assert runner.running() == []


async def test_the_same_execution_id_cannot_run_twice_at_once() -> None:
    runner = ActionRunner()
    task = runner.start("exec-dup", ShellSpec(("sleep", "0.2")))
    with pytest.raises(DuplicateExecution):
        runner.start("exec-dup", ShellSpec(("sleep", "0.2")))
    assert (await task).ok
    assert (await runner.run("exec-dup", ShellSpec(("true",)))).ok  # once finished, the id is free again


async def test_cancel_by_execution_id_stops_the_script_and_its_grandchild() -> None:
    runner = ActionRunner()
    seen = asyncio.Event()
    pids: list[int] = []

    async def on_line(line: str) -> None:
        if m := re.search(r"child sleep pid (\d+)", line):
            pids.append(int(m.group(1)))
            seen.set()

    spec = ShellSpec(
        (str(SCRIPTS_DIR / "payment-rollback.sh"), "--disable-new-payments"),
        env={**FAST, "ROLLBOT_HANG": "payment-rollback"},
        kill_grace_s=2,
    )
    task = runner.start("exec-cancel", spec, on_line=on_line)
    await asyncio.wait_for(seen.wait(), 5)
    assert runner.cancel("exec-cancel") is True
    result = await asyncio.wait_for(task, 10)
    assert result.outcome is Outcome.CANCELLED
    assert not pid_alive(pids[0])
    assert runner.cancel("exec-cancel") is False  # no longer running


async def test_shutdown_cancels_whatever_is_still_running() -> None:
    runner = ActionRunner()
    task = runner.start("exec-long", ShellSpec(("sleep", "60"), kill_grace_s=1))
    await asyncio.wait_for(runner.shutdown(), 5)
    assert (await task).outcome is Outcome.CANCELLED


async def test_runner_runs_checks_with_its_shared_client(server: LocalServer) -> None:
    runner = ActionRunner()
    result = await runner.run("exec-check", CheckSpec(f"{server.url}/ok"))
    await runner.shutdown()
    assert result.outcome is Outcome.SUCCEEDED and result.check is not None and result.check.passed


# --- progress throttle --------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []

    async def __call__(self, snapshot: ProgressSnapshot) -> None:
        self.snapshots.append(snapshot)


async def test_progress_is_emitted_at_most_once_per_interval_and_once_at_the_end() -> None:
    clock = FakeClock()
    rec = Recorder()
    throttle = ProgressThrottle(rec, interval_s=1.0, keep_lines=2, monotonic=clock.monotonic)
    await throttle.on_line("step 1")  # first line: shown at once
    clock.advance(0.25)  # binary fractions, so the sums are exact
    await throttle.on_line("step 2")
    clock.advance(0.25)
    await throttle.on_line("step 3")
    assert len(rec.snapshots) == 1
    clock.advance(0.5)  # 1.0 s after the last emission
    await throttle.on_line("step 4")
    assert len(rec.snapshots) == 2
    assert rec.snapshots[1].last_lines == ("step 3", "step 4")
    assert rec.snapshots[1].line_count == 4
    clock.advance(0.5)
    await throttle.tick()
    assert len(rec.snapshots) == 2  # too soon
    clock.advance(0.625)
    await throttle.tick()  # silent script, but the elapsed time moved
    assert len(rec.snapshots) == 3 and rec.snapshots[2].elapsed_s == 2.125
    clock.advance(0.125)
    await throttle.finish()
    await throttle.finish()
    await throttle.on_line("after the end")
    assert [s.final for s in rec.snapshots] == [False, False, False, True]
    assert rec.snapshots[-1].elapsed_s == 2.25
    assert rec.snapshots[-1].last_lines == ("step 3", "step 4")


async def test_a_chatty_script_produces_few_progress_updates() -> None:
    """300 lines in well under a second: the throttle passes one update, then the final one."""
    clock = FakeClock()
    rec = Recorder()
    throttle = ProgressThrottle(rec, interval_s=1.0, monotonic=clock.monotonic)
    argv = ("bash", "-c", "for i in $(seq 1 300); do echo line $i; done")
    result = await ActionRunner().run("exec-chatty", ShellSpec(argv), on_line=throttle.on_line)
    await throttle.finish()
    assert result.ok
    assert len(rec.snapshots) == 2
    assert rec.snapshots[-1].final and rec.snapshots[-1].line_count == 300
    assert rec.snapshots[-1].last_lines[-1] == "line 300"


async def test_the_ticker_stops_after_finish() -> None:
    clock = FakeClock()
    rec = Recorder()
    throttle = ProgressThrottle(rec, interval_s=1.0, monotonic=clock.monotonic)

    async def fake_sleep(seconds: float) -> None:
        clock.advance(seconds)
        if clock.monotonic() >= 1003.0:
            await throttle.finish()

    await asyncio.wait_for(throttle.ticker(sleep=fake_sleep), 1)
    assert [round(s.elapsed_s) for s in rec.snapshots] == [1, 2, 3]
    assert rec.snapshots[-1].final
