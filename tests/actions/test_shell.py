"""Shell actions with real subprocesses: exit codes, timeouts and Cancel reaching grandchildren, output cap,
redaction before anything leaves the runner, and values passed as literal arguments (never a shell)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actions.params import ParamDef, render_argv, resolve_params, secret_values
from actions.redact import Redactor
from actions.result import Outcome
from actions.shell import ShellSpec, enable_subreaper, run_shell
from tests.actions.conftest import FAST, LAUNCH_DIR, SCRIPTS_DIR, pid_alive, pid_exists

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


class Lines:
    """Collects the lines an action hands to its callback; can wait for one matching a pattern."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    async def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._changed.set()

    async def wait_for(self, pattern: str, within_s: float = 5.0) -> re.Match[str]:
        async with asyncio.timeout(within_s):
            while True:
                for line in self.lines:
                    if m := re.search(pattern, line):
                        return m
                self._changed.clear()
                await self._changed.wait()


def _script(name: str, *args: str) -> tuple[str, ...]:
    return (str(SCRIPTS_DIR / name), *args)


async def test_a_successful_script_reports_success_with_its_output() -> None:
    lines = Lines()
    spec = ShellSpec(_script("rollback-application.sh", "--version", "v2.3.1", "--confirm-rollback"), env=FAST)
    result = await run_shell(spec, on_line=lines)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.exit_code == 0
    assert result.pid is not None and result.duration_s > 0
    assert "rollback-application: DONE - application at v2.3.1" in result.output
    assert lines.lines == result.output.splitlines()


async def test_a_non_zero_exit_is_a_failure_with_its_exit_code() -> None:
    env = {**FAST, "ROLLBOT_FAIL": "rollback-application"}
    spec = ShellSpec(_script("rollback-application.sh", "--version", "v2.3.1", "--confirm-rollback"), env=env)
    result = await run_shell(spec)
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 3
    assert "ERROR: deployment app-web: pods in CrashLoopBackOff" in result.output


async def test_timeout_terminates_the_script_and_its_grandchild() -> None:
    """ROLLBOT_HANG makes the script wait on a child `sleep`; both must be gone when the result comes back."""
    lines = Lines()
    env = {**FAST, "ROLLBOT_HANG": "rollback-database"}
    spec = ShellSpec(
        _script("rollback-database.sh", "--restore-point", "backup-20261127-0300", "--confirm-data-loss"),
        env=env,
        timeout_s=1.0,
        kill_grace_s=2.0,
    )
    task = asyncio.create_task(run_shell(spec, on_line=lines))
    child = int((await lines.wait_for(r"child sleep pid (\d+)")).group(1))
    assert pid_alive(child)
    result = await task
    assert result.outcome is Outcome.TIMED_OUT
    assert not pid_alive(child), "the grandchild sleep survived the timeout"
    assert result.pid is not None and not pid_alive(result.pid)
    assert "[rollbot] timed out after 1s" in result.output


@pytest.fixture
def subreaper() -> Iterator[None]:
    if not enable_subreaper():
        pytest.skip("PR_SET_CHILD_SUBREAPER needs Linux")
    try:
        yield
    finally:
        enable_subreaper(False)


@pytest.mark.usefixtures("subreaper")
async def test_as_subreaper_the_killed_grandchild_is_reaped_not_left_a_zombie() -> None:
    lines = Lines()
    argv = ("bash", "-c", "sleep 300 & echo child $!; wait")
    task = asyncio.create_task(run_shell(ShellSpec(argv, timeout_s=0.3, kill_grace_s=1), on_line=lines))
    child = int((await lines.wait_for(r"child (\d+)")).group(1))
    result = await task
    assert result.outcome is Outcome.TIMED_OUT
    assert not pid_exists(child), "the grandchild is still in the process table (a zombie)"


async def test_a_group_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    lines = Lines()
    # bash and its child both ignore SIGTERM (an ignored signal stays ignored across exec)
    argv = ("bash", "-c", "trap '' TERM; sleep 300 & echo child $!; wait; echo survived")
    spec = ShellSpec(argv, timeout_s=0.5, kill_grace_s=0.5)
    task = asyncio.create_task(run_shell(spec, on_line=lines))
    child = int((await lines.wait_for(r"child (\d+)")).group(1))
    result = await task
    assert result.outcome is Outcome.TIMED_OUT
    assert result.exit_code == -9  # SIGKILL
    assert not pid_alive(child)
    assert "SIGTERM, then SIGKILL after 0.5s" in result.output
    assert "survived" not in result.output


async def test_cancel_stops_the_script_and_its_grandchild() -> None:
    lines = Lines()
    cancel = asyncio.Event()
    env = {**FAST, "ROLLBOT_HANG": "all"}
    spec = ShellSpec(_script("reset-cache-cdn.sh", "--flush-all"), env=env, timeout_s=60)
    task = asyncio.create_task(run_shell(spec, on_line=lines, cancel=cancel))
    child = int((await lines.wait_for(r"child sleep pid (\d+)")).group(1))
    cancel.set()
    result = await asyncio.wait_for(task, 10)
    assert result.outcome is Outcome.CANCELLED
    assert not pid_alive(child)
    assert result.duration_s < 10


async def test_cancelling_the_task_itself_still_stops_the_group() -> None:
    """On bot shutdown the task is cancelled rather than asked to stop; the tree must not outlive it."""
    lines = Lines()
    env = {**FAST, "ROLLBOT_HANG": "all"}
    spec = ShellSpec(_script("quick-health-check.sh"), env=env, kill_grace_s=2)
    task = asyncio.create_task(run_shell(spec, on_line=lines))
    child = int((await lines.wait_for(r"child sleep pid (\d+)")).group(1))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not pid_alive(child)


async def test_background_processes_left_behind_by_a_finished_script_are_stopped() -> None:
    argv = ("bash", "-c", "sleep 300 & echo child $!; echo bye")
    result = await run_shell(ShellSpec(argv, timeout_s=10, kill_grace_s=1))
    assert result.outcome is Outcome.SUCCEEDED
    child = int(re.search(r"child (\d+)", result.output).group(1))  # type: ignore[union-attr]
    assert not pid_alive(child)
    assert "stopped background processes left behind" in result.output


async def test_output_is_capped_keeping_the_beginning_and_the_end() -> None:
    argv = (sys.executable, "-c", "for i in range(5000): print(f'line {i:05d} ' + 'x' * 40)")
    result = await run_shell(ShellSpec(argv, max_output_bytes=4096))
    assert result.outcome is Outcome.SUCCEEDED
    assert result.truncated
    assert len(result.output.encode()) <= 4096 + 100  # the cap plus the one-line truncation note
    assert result.output.startswith("line 00000 ")
    assert result.output.rstrip().endswith("line 04999 " + "x" * 40)
    assert "output truncated" in result.output


async def test_planted_secrets_never_reach_the_output_or_the_callback() -> None:
    lines = Lines()
    deploy_token = "dpl-7f3a9c1e5b2d4f60"
    script = 'echo "token from env: $DEPLOY_TOKEN"; echo "slack said xoxb-1234-5678-abcdefABCDEF ok"; echo "$1"'
    defs = [ParamDef(name="api_key", secret=True, pattern=r"[A-Za-z0-9]{16,}")]
    values = resolve_params(defs, {"api_key": "AbCdEf0123456789Zz"}, LAUNCH_DIR, NOW)
    argv = render_argv(["bash", "-c", script, "probe", "{api_key}"], values)
    redactor = Redactor([deploy_token, *secret_values(defs, values)])
    result = await run_shell(ShellSpec(argv, env={"DEPLOY_TOKEN": deploy_token}), redactor=redactor, on_line=lines)
    assert result.outcome is Outcome.SUCCEEDED
    seen = "\n".join([result.output, *lines.lines])
    for secret in (deploy_token, "xoxb-1234-5678-abcdefABCDEF", "AbCdEf0123456789Zz"):
        assert secret not in seen
    assert lines.lines == ["token from env: [REDACTED]", "slack said [REDACTED] ok", "[REDACTED]"]


async def test_a_value_full_of_metacharacters_is_one_literal_argument(tmp_path: Path) -> None:
    """Even when a (too) permissive pattern lets metacharacters through, no shell ever sees them."""
    pwned = tmp_path / "pwned"
    victim = tmp_path / "x"
    victim.mkdir()
    # relative paths: the action runs in tmp_path, so a shell, had there been one, would hit these files
    value = "v1; rm -rf x $(touch pwned) `touch pwned` | true && echo hi > pwned"
    values = resolve_params([ParamDef(name="version", pattern=r".*")], {"version": value}, LAUNCH_DIR, NOW)
    probe = "import json, sys; print(json.dumps(sys.argv[1:]))"
    argv = render_argv([sys.executable, "-c", probe, "--version", "{version}"], values)
    result = await run_shell(ShellSpec(argv, cwd=tmp_path))
    assert result.outcome is Outcome.SUCCEEDED
    assert json.loads(result.output) == ["--version", value]
    assert not pwned.exists()
    assert victim.is_dir()


async def test_the_real_script_refuses_the_injected_version_itself(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    spec = ShellSpec(_script("rollback-application.sh", "--version", f"$(touch {pwned})", "--confirm-rollback"), env=FAST)
    result = await run_shell(spec)
    assert result.outcome is Outcome.FAILED and result.exit_code == 2
    assert "--version: invalid value" in result.output
    assert not pwned.exists()


async def test_only_allowlisted_parent_variables_reach_the_action(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBOT_SLACK_BOT_TOKEN", "xoxb-should-not-leak")
    monkeypatch.setenv("TZ", "UTC")
    probe = "import json, os; print(json.dumps(sorted(os.environ)))"
    result = await run_shell(ShellSpec((sys.executable, "-c", probe), env={"STAGE": "50"}))
    names = set(json.loads(result.output))
    assert "ROLLBOT_SLACK_BOT_TOKEN" not in names
    assert {"PATH", "TZ", "STAGE"} <= names


async def test_a_program_that_cannot_start_is_a_failure_with_a_reason() -> None:
    result = await run_shell(ShellSpec(("/nonexistent/rollback.sh",)))
    assert result.outcome is Outcome.FAILED
    assert result.exit_code is None
    assert result.error is not None and "cannot start /nonexistent/rollback.sh" in result.error


async def test_relative_script_paths_resolve_against_the_working_directory() -> None:
    spec = ShellSpec(("./scripts/quick-health-check.sh",), cwd=LAUNCH_DIR, env=FAST)
    result = await run_shell(spec)
    assert result.outcome is Outcome.SUCCEEDED, result.output
    assert os.getcwd() != str(LAUNCH_DIR)
