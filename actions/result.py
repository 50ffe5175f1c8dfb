"""What the action kinds return, and the callback types they share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"
    DRY_RUN = "dry_run"  # nothing ran; `plan` says what would have


class CheckVerdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"  # target unreachable or too slow to answer: pause, do not continue


OnLine = Callable[[str], Awaitable[None]]
Monotonic = Callable[[], float]


@dataclass(frozen=True)
class CheckResult:
    verdict: CheckVerdict
    status: int | None
    latency_ms: float | None
    reason: str

    @property
    def passed(self) -> bool:
        return self.verdict is CheckVerdict.PASSED


@dataclass(frozen=True)
class Plan:
    """Exactly what an action would do, for dry runs and for the record. Secrets already redacted."""

    kind: Literal["shell", "http", "check", "prometheus"]
    command: str  # one line for people: a quoted argv, or "POST https://..."
    details: Mapping[str, Any] = field(default_factory=dict)  # argv list, cwd, env names / method, url, ...


@dataclass(frozen=True)
class ActionResult:
    """The end of one action run. `output` is already redacted and capped."""

    outcome: Outcome
    exit_code: int | None  # process exit status; HTTP status for http/check; None when there was none
    duration_s: float
    output: str
    truncated: bool = False
    pid: int | None = None
    error: str | None = None  # why it could not run or finish (spawn failure, transport error, ...)
    attempts: int = 1
    check: CheckResult | None = None  # for check actions: passed / failed / inconclusive
    plan: Plan | None = None  # what ran (or, for a dry run, would have); set by ActionRunner

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED
