"""Faults a test can set: latency per call, a share of calls failing (500, 429 or a timeout), or a method
failing its next N calls (also "applied, but the answer lost": LOST_500, LOST_TIMEOUT)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Statuses for calls Slack applies but whose answer is lost: a 500 after the work was done, or no answer at all.
LOST_500 = -1
LOST_TIMEOUT = -2
PASS = -99  # in a fail_next queue: this call goes through


@dataclass
class Fault:
    status: int  # 500, 429, 0 for "no answer within the client's timeout", or LOST_500 / LOST_TIMEOUT
    retry_after: int = 1


@dataclass
class Faults:
    delay_s: float = 0.0
    jitter_s: float = 0.0
    fail_share: float = 0.0
    fail_statuses: list[int] = field(default_factory=lambda: [500])
    hang_s: float = 30.0
    next_failures: dict[str, list[int]] = field(default_factory=dict)
    # Like next_failures, counting only the calls whose arguments match: (method, match, queue).
    matching: list[tuple[str, Callable[[dict[str, Any]], bool], list[int]]] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)

    def configure(self, *, delay_s: float | None = None, jitter_s: float | None = None,
                  fail_share: float | None = None, fail_statuses: list[int] | None = None,
                  seed: int | None = None, hang_s: float | None = None) -> None:
        if delay_s is not None:
            self.delay_s = delay_s
        if jitter_s is not None:
            self.jitter_s = jitter_s
        if fail_share is not None:
            self.fail_share = fail_share
        if fail_statuses is not None:
            self.fail_statuses = list(fail_statuses)
        if hang_s is not None:
            self.hang_s = hang_s
        if seed is not None:
            self._rng.seed(seed)

    def fail_next(self, method: str, times: int, status: int = 500, after: int = 0,
                  when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """The method's next `times` calls fail with `status`, once `after` calls have gone through untouched.
        With `when`, only the calls whose arguments it accepts count (and fail); the others are untouched."""
        if when is not None:
            self.matching.append((method, when, [PASS] * after + [status] * times))
            return
        queue = self.next_failures.setdefault(method, [])
        queue.extend([PASS] * after + [status] * times)

    def clear(self) -> None:
        """No more queued failures (the next_failures and the matching ones)."""
        self.next_failures.clear()
        self.matching.clear()

    def latency(self) -> float:
        return self.delay_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)

    def pick(self, method: str, args: dict[str, Any] | None = None) -> Fault | None:
        for wanted, when, queue in self.matching:
            if wanted == method and queue and when(args or {}):
                status = queue.pop(0)
                return None if status == PASS else Fault(status=status)
        queued = self.next_failures.get(method)
        if queued:
            status = queued.pop(0)
            return None if status == PASS else Fault(status=status)
        if self.fail_share and self._rng.random() < self.fail_share:
            return Fault(status=self._rng.choice(self.fail_statuses))
        return None

    def apply(self, spec: dict[str, Any]) -> None:
        """From the control API: {"delay_ms", "jitter_ms", "fail_share", "fail_statuses", "seed", "fail_next": {...}}."""
        self.configure(delay_s=spec["delay_ms"] / 1000 if "delay_ms" in spec else None,
                       jitter_s=spec["jitter_ms"] / 1000 if "jitter_ms" in spec else None,
                       fail_share=spec.get("fail_share"), fail_statuses=spec.get("fail_statuses"),
                       seed=spec.get("seed"))
        for method, times in (spec.get("fail_next") or {}).items():
            self.fail_next(method, int(times), int(spec.get("fail_status", 500)))
