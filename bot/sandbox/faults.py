"""Faults a test can set: latency per call, a share of calls failing (500, 429 or a timeout), or a method
failing its next N calls."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    status: int  # 500, 429, or 0 for "no answer within the client's timeout"
    retry_after: int = 1


@dataclass
class Faults:
    delay_s: float = 0.0
    jitter_s: float = 0.0
    fail_share: float = 0.0
    fail_statuses: list[int] = field(default_factory=lambda: [500])
    hang_s: float = 30.0
    next_failures: dict[str, list[int]] = field(default_factory=dict)
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

    def fail_next(self, method: str, times: int, status: int = 500) -> None:
        self.next_failures.setdefault(method, []).extend([status] * times)

    def latency(self) -> float:
        return self.delay_s + (self._rng.uniform(0, self.jitter_s) if self.jitter_s else 0.0)

    def pick(self, method: str) -> Fault | None:
        queued = self.next_failures.get(method)
        if queued:
            return Fault(status=queued.pop(0))
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
