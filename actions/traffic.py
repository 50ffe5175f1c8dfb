"""Gradual traffic restoration: raise traffic stage by stage, gate each stage on its check.

Pure orchestration: `set_traffic(pct)` runs the traffic script, `check()` probes. A failed check halts
(the Technical Lead decides: roll back, retry, or continue); an inconclusive one pauses: not knowing is
not a reason to send more traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from actions.result import ActionResult, CheckResult, CheckVerdict

log = logging.getLogger(__name__)

SetTraffic = Callable[[int], Awaitable[ActionResult | bool | None]]
Check = Callable[[], Awaitable[CheckResult]]
OnStage = Callable[["StageReport"], Awaitable[None]]


@dataclass(frozen=True)
class StageReport:
    percent: int
    check: CheckResult | None  # None when the stage stopped before its check (set_traffic failed)


@dataclass(frozen=True)
class Completed:
    stages: tuple[StageReport, ...]


@dataclass(frozen=True)
class Halted:
    """A stage's traffic change or check failed: stop here and ask a person."""

    stage: int
    reason: str
    stages: tuple[StageReport, ...]


@dataclass(frozen=True)
class Paused:
    """A stage's check could not tell (target unreachable, timeout): hold traffic here until a person says."""

    stage: int
    reason: str
    stages: tuple[StageReport, ...]


RestoreResult = Completed | Halted | Paused


def validate_stages(stages: Sequence[int]) -> tuple[int, ...]:
    """Stages must be percentages in 1..100, strictly increasing."""
    out = tuple(int(s) for s in stages)
    if not out:
        raise ValueError("no traffic stages")
    if any(not 0 < s <= 100 for s in out):
        raise ValueError(f"traffic stages must be within 1..100: {list(out)}")
    if any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"traffic stages must increase: {list(out)}")
    return out


async def restore_traffic(
    stages: Sequence[int],
    set_traffic: SetTraffic,
    check: Check,
    *,
    settle_s: float = 0.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_stage: OnStage | None = None,
) -> RestoreResult:
    """Run each stage: set traffic, wait `settle_s`, check. Stops at the first stage that is not clean.

    `set_traffic` may return an ActionResult (anything but succeeded halts), a bool (False halts) or None.
    To resume after a pause, call again with the remaining stages (the paused stage included).
    """
    reports: list[StageReport] = []
    for pct in validate_stages(stages):
        try:
            applied = await set_traffic(pct)
        except Exception as exc:  # the traffic state is unknown: a person must look
            log.exception("set_traffic(%d) raised", pct)
            reports.append(StageReport(pct, None))
            return Halted(pct, f"setting traffic to {pct}% raised {type(exc).__name__}: {exc}", tuple(reports))
        failure = _set_failure(applied)
        if failure is not None:
            reports.append(StageReport(pct, None))
            return Halted(pct, f"setting traffic to {pct}% failed: {failure}", tuple(reports))
        if settle_s > 0:
            await sleep(settle_s)
        try:
            result = await check()
        except Exception as exc:  # a probe that crashed tells us nothing
            log.exception("check at %d%% raised", pct)
            result = CheckResult(CheckVerdict.INCONCLUSIVE, None, None, f"check raised {type(exc).__name__}: {exc}")
        report = StageReport(pct, result)
        reports.append(report)
        if on_stage is not None:
            await on_stage(report)
        if result.verdict is CheckVerdict.FAILED:
            return Halted(pct, f"check at {pct}% failed: {result.reason}", tuple(reports))
        if result.verdict is CheckVerdict.INCONCLUSIVE:
            return Paused(pct, f"check at {pct}% inconclusive: {result.reason}", tuple(reports))
    return Completed(tuple(reports))


def _set_failure(applied: ActionResult | bool | None) -> str | None:
    if applied is None or applied is True:
        return None
    if applied is False:
        return "the traffic change reported failure"
    if isinstance(applied, ActionResult):
        if applied.ok:
            return None
        code = f" (exit {applied.exit_code})" if applied.exit_code is not None else ""
        return f"{applied.outcome.value}{code}"
    raise TypeError(f"set_traffic returned {type(applied).__name__}")
