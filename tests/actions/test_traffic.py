"""Gradual traffic restoration: each stage runs the real traffic script, then a real HTTP check gates it."""

from __future__ import annotations

import socket

import pytest

from actions.check import CheckSpec, run_check
from actions.result import ActionResult, CheckResult
from actions.runner import ActionRunner
from actions.shell import ShellSpec
from actions.traffic import Completed, Halted, Paused, restore_traffic, validate_stages
from tests.actions.conftest import FAST, SCRIPTS_DIR, LocalServer

STAGES = [25, 50, 75, 100]


class Rollout:
    """set_traffic runs gradual-traffic-restore.sh for one stage; on success the test server's 'load balancer'
    moves to that percentage, which is what its /health endpoint judges."""

    def __init__(self, server: LocalServer, env: dict[str, str] | None = None) -> None:
        self.server = server
        self.env = {**FAST, **(env or {})}
        self.runner = ActionRunner()
        self.ran: list[int] = []
        self.outputs: list[str] = []

    async def set_traffic(self, pct: int) -> ActionResult:
        self.ran.append(pct)
        spec = ShellSpec((str(SCRIPTS_DIR / "gradual-traffic-restore.sh"), "--percentage", str(pct)), env=self.env)
        result = await self.runner.run(f"traffic-{pct}", spec)
        self.outputs.append(result.output)
        if result.ok:
            self.server.state["traffic"] = pct
        return result

    async def check(self) -> CheckResult:
        return await run_check(CheckSpec(f"{self.server.url}/health", max_latency_ms=2000))


async def test_a_failed_check_at_50_percent_halts_there_and_75_never_runs(server: LocalServer) -> None:
    server.state["unhealthy_from"] = 50
    rollout = Rollout(server)
    result = await restore_traffic(STAGES, rollout.set_traffic, rollout.check)
    assert isinstance(result, Halted)
    assert result.stage == 50
    assert result.reason == "check at 50% failed: status 503, expected 200"
    assert rollout.ran == [25, 50]
    assert server.hits["health"] == 2
    assert server.state["traffic"] == 50
    assert [(s.percent, s.check.verdict.value if s.check else None) for s in result.stages] == [
        (25, "passed"),
        (50, "failed"),
    ]
    assert "Routing 50% of traffic" in rollout.outputs[-1]


async def test_all_stages_passing_completes(server: LocalServer) -> None:
    rollout = Rollout(server)
    result = await restore_traffic(STAGES, rollout.set_traffic, rollout.check)
    assert isinstance(result, Completed)
    assert [s.percent for s in result.stages] == STAGES
    assert rollout.ran == STAGES and server.state["traffic"] == 100


async def test_an_inconclusive_check_pauses_instead_of_continuing(server: LocalServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    rollout = Rollout(server)

    async def unreachable_check() -> CheckResult:
        return await run_check(CheckSpec(f"http://127.0.0.1:{closed_port}/health"))

    result = await restore_traffic(STAGES, rollout.set_traffic, unreachable_check)
    assert isinstance(result, Paused)
    assert result.stage == 25
    assert result.reason.startswith("check at 25% inconclusive: unreachable")
    assert rollout.ran == [25]


async def test_a_failing_traffic_script_halts_before_its_check(server: LocalServer) -> None:
    rollout = Rollout(server, env={"ROLLBOT_FAIL": "gradual-traffic-restore"})
    result = await restore_traffic(STAGES, rollout.set_traffic, rollout.check)
    assert isinstance(result, Halted)
    assert result.stage == 25
    assert result.reason == "setting traffic to 25% failed: failed (exit 3)"
    assert server.hits["health"] == 0


async def test_resuming_after_a_pause_continues_from_the_paused_stage(server: LocalServer) -> None:
    rollout = Rollout(server)
    result = await restore_traffic([50, 75, 100], rollout.set_traffic, rollout.check)
    assert isinstance(result, Completed) and rollout.ran == [50, 75, 100]


@pytest.mark.parametrize("stages", [[], [50, 25], [0, 50], [25, 150], [50, 50]])
def test_stages_must_be_increasing_percentages(stages: list[int]) -> None:
    with pytest.raises(ValueError):
        validate_stages(stages)
