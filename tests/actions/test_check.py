"""Checks: passed, failed (status or latency), and inconclusive when the target cannot be reached in time."""

from __future__ import annotations

import socket

from actions.check import CheckSpec, run_check, run_check_action
from actions.result import CheckVerdict, Outcome
from tests.actions.conftest import LocalServer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_healthy_fast_answer_passes_with_its_latency(server: LocalServer) -> None:
    result = await run_check(CheckSpec(f"{server.url}/ok", max_latency_ms=2000))
    assert result.verdict is CheckVerdict.PASSED
    assert result.status == 200
    assert result.latency_ms is not None and 0 < result.latency_ms < 2000


async def test_an_unexpected_status_fails(server: LocalServer) -> None:
    result = await run_check(CheckSpec(f"{server.url}/status/503"))
    assert result.verdict is CheckVerdict.FAILED
    assert result.status == 503
    assert result.reason == "status 503, expected 200"


async def test_an_answer_slower_than_the_threshold_fails(server: LocalServer) -> None:
    result = await run_check(CheckSpec(f"{server.url}/slow?ms=250", max_latency_ms=100, timeout_s=5))
    assert result.verdict is CheckVerdict.FAILED
    assert result.latency_ms is not None and result.latency_ms >= 250
    assert "above 100 ms" in result.reason


async def test_an_unreachable_target_is_inconclusive() -> None:
    result = await run_check(CheckSpec(f"http://127.0.0.1:{_closed_port()}/health"))
    assert result.verdict is CheckVerdict.INCONCLUSIVE
    assert result.status is None
    assert result.reason.startswith("unreachable: ConnectError")


async def test_no_answer_within_the_timeout_is_inconclusive(server: LocalServer) -> None:
    result = await run_check(CheckSpec(f"{server.url}/slow?ms=2000", timeout_s=0.2))
    assert result.verdict is CheckVerdict.INCONCLUSIVE
    assert result.reason == "no answer within 0.2s"


async def test_a_check_as_an_action_carries_its_verdict(server: LocalServer) -> None:
    passed = await run_check_action(CheckSpec(f"{server.url}/ok"))
    assert passed.outcome is Outcome.SUCCEEDED and passed.check is not None and passed.check.passed
    unreachable = await run_check_action(CheckSpec(f"http://127.0.0.1:{_closed_port()}/"))
    assert unreachable.outcome is Outcome.FAILED
    assert unreachable.check is not None and unreachable.check.verdict is CheckVerdict.INCONCLUSIVE
