"""Every sample script runs with its seed flags, fails on ROLLBOT_FAIL, and refuses unknown flags."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from actions.result import Outcome
from actions.shell import ShellSpec, run_shell
from tests.actions.conftest import FAST, SCRIPTS_DIR

# The flags the default runbook passes to each script.
SEED_FLAGS: dict[str, list[str]] = {
    "quick-health-check.sh": [],
    "emergency-db-snapshot.sh": ["--timestamp"],
    "backup-current-config.sh": ["--emergency"],
    "enable-maintenance-mode.sh": ["--emergency"],
    "rollback-application.sh": ["--version", "v2.3.1", "--confirm-rollback", "--preserve-data"],
    "rollback-database.sh": ["--restore-point", "backup-20261127-0300", "--confirm-data-loss"],
    "reset-cache-cdn.sh": ["--flush-all"],
    "critical-function-test.sh": ["--emergency"],
    "gradual-traffic-restore.sh": ["--percentage", "25,50,75,100"],
    "complete-system-rollback.sh": [
        "--environment",
        "production",
        "--restore-version",
        "v2.3.1",
        "--preserve-user-data",
        "--confirm-rollback",
    ],
    "database-rollback.sh": [
        "--restore-point",
        "backup-20261127-0300",
        "--preserve-recent-data",
        "--confirm-data-loss",
    ],
    "frontend-rollback.sh": ["--version", "v2.3.1", "--cdn-invalidation", "--preserve-backend"],
    "payment-rollback.sh": [
        "--disable-new-payments",
        "--preserve-pending-transactions",
        "--rollback-payment-config",
    ],
}
SCRIPTS = sorted(SEED_FLAGS)


def test_every_script_is_present_and_executable() -> None:
    on_disk = {p.name for p in SCRIPTS_DIR.glob("*.sh") if p.name != "_lib.sh"}
    assert on_disk == set(SEED_FLAGS)
    for name in SCRIPTS:
        path = SCRIPTS_DIR / name
        assert os.access(path, os.X_OK), f"{name} is not executable"
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text


@pytest.mark.parametrize("name", SCRIPTS)
async def test_script_succeeds_with_its_seed_flags(name: str) -> None:
    result = await run_shell(ShellSpec((str(SCRIPTS_DIR / name), *SEED_FLAGS[name]), env=FAST))
    assert result.outcome is Outcome.SUCCEEDED, result.output
    lines = result.output.splitlines()
    assert len(lines) >= 4, "prints progress"
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in lines), "every line is timestamped"
    assert f"{name[:-3]}: DONE" in lines[-1]


@pytest.mark.parametrize("name", SCRIPTS)
async def test_script_fails_with_exit_3_after_some_output_on_rollbot_fail(name: str) -> None:
    env = {**FAST, "ROLLBOT_FAIL": f"some-other-script,{name}"}
    result = await run_shell(ShellSpec((str(SCRIPTS_DIR / name), *SEED_FLAGS[name]), env=env))
    assert result.outcome is Outcome.FAILED and result.exit_code == 3
    lines = result.output.splitlines()
    assert len(lines) >= 3 and "ERROR: " in lines[-2] and "FAILED (exit 3)" in lines[-1]
    assert "DONE" not in result.output


@pytest.mark.parametrize("name", SCRIPTS)
async def test_script_refuses_an_unknown_flag_with_usage(name: str) -> None:
    result = await run_shell(ShellSpec((str(SCRIPTS_DIR / name), *SEED_FLAGS[name], "--yolo"), env=FAST))
    assert result.exit_code == 2
    assert "unknown flag: --yolo" in result.output
    assert f"usage: {name}" in result.output


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("rollback-application.sh", ["--version", "v2.3.1"], "missing required flag --confirm-rollback"),
        ("rollback-database.sh", ["--restore-point", "x;y", "--confirm-data-loss"], "--restore-point: invalid value"),
        ("gradual-traffic-restore.sh", ["--percentage", "50,25"], "stages must increase"),
        ("gradual-traffic-restore.sh", ["--percentage", "150"], "not within 1..100"),
        ("reset-cache-cdn.sh", ["--flush-all=yes"], "--flush-all takes no value"),
    ],
)
async def test_scripts_validate_their_flags(name: str, args: list[str], message: str) -> None:
    result = await run_shell(ShellSpec((str(SCRIPTS_DIR / name), *args), env=FAST))
    assert result.exit_code == 2
    assert message in result.output


async def test_the_snapshot_takes_its_timestamp_from_the_flag_or_the_clock() -> None:
    path = str(SCRIPTS_DIR / "emergency-db-snapshot.sh")
    given = await run_shell(ShellSpec((path, "--timestamp", "20261127-0312"), env=FAST))
    assert given.ok and "snapshot emergency-20261127-0312 ready" in given.output
    bare = await run_shell(ShellSpec((path, "--timestamp"), env=FAST))
    assert bare.ok and re.search(r"snapshot emergency-\d{8}-\d{6} ready", bare.output)


async def test_the_traffic_script_accepts_a_single_percentage() -> None:
    path = str(SCRIPTS_DIR / "gradual-traffic-restore.sh")
    result = await run_shell(ShellSpec((path, "--percentage", "50"), env=FAST))
    assert result.ok and "Routing 50% of traffic" in result.output and "traffic at 50%" in result.output


async def test_scripts_pause_a_few_seconds_at_normal_speed_and_speed_divides_every_pause(tmp_path: Path) -> None:
    """The pauses the quickest script asks for, read from a `sleep` of the test's own on PATH (so nothing here
    depends on how fast the machine is): a few seconds at speed 1, a tenth of that at speed 10."""
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "sleep").write_text('#!/bin/sh\necho "$1" >> "$(dirname "$0")/pauses"\n')
    (shim / "sleep").chmod(0o755)
    path = str(SCRIPTS_DIR / "quick-health-check.sh")

    async def pauses(speed: str) -> float:
        (shim / "pauses").unlink(missing_ok=True)
        result = await run_shell(ShellSpec((path,), env={"ROLLBOT_SCRIPT_SPEED": speed,
                                                         "PATH": f"{shim}:{os.environ['PATH']}"}))
        assert result.ok, result.output
        return sum(float(x) for x in (shim / "pauses").read_text().split())

    normal, fast = await pauses("1"), await pauses("10")
    assert 2 <= normal <= 5, normal
    assert fast == pytest.approx(normal / 10, abs=0.01)
