"""Throttled progress reporting: the thread's progress message is edited at most once per interval.

Slack rate-limits message edits (about one per second per message), and a script can print hundreds of
lines a second, so lines are collected and only a snapshot (last lines, elapsed time) goes out when due,
plus one final snapshot at the end. Time comes from an injected monotonic callable so tests move it by hand.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actions.result import Monotonic


@dataclass(frozen=True)
class ProgressSnapshot:
    elapsed_s: float
    last_lines: tuple[str, ...]
    line_count: int
    final: bool


OnProgress = Callable[[ProgressSnapshot], Awaitable[None]]


class ProgressThrottle:
    """Feed it lines (`on_line`, usable directly as an action's line callback) and call `finish()` at the end.

    `on_progress` is awaited inline (calls never overlap); keep it quick, e.g. hand the snapshot to the
    Slack updater rather than waiting on the API when output volume matters.
    """

    def __init__(
        self,
        on_progress: OnProgress,
        *,
        interval_s: float = 1.0,
        keep_lines: int = 5,
        monotonic: Monotonic = time.monotonic,
        started_at: float | None = None,
    ) -> None:
        self._on_progress = on_progress
        self.interval_s = interval_s
        self._monotonic = monotonic
        self._started = monotonic() if started_at is None else started_at
        self._lines: deque[str] = deque(maxlen=keep_lines)
        self._count = 0
        self._last_emit: float | None = None
        self._finished = False
        self._lock = asyncio.Lock()
        self.emissions = 0

    @property
    def finished(self) -> bool:
        return self._finished

    async def on_line(self, line: str) -> None:
        self._lines.append(line)
        self._count += 1
        await self._emit_if_due()

    async def tick(self) -> None:
        """Emit if the interval has passed, even without new lines (the elapsed time moved)."""
        await self._emit_if_due()

    async def finish(self) -> None:
        """The final snapshot; always sent, exactly once. Later lines and ticks are ignored."""
        async with self._lock:
            if self._finished:
                return
            self._finished = True
            await self._emit(self._monotonic(), final=True)

    async def ticker(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Run alongside the action to keep the elapsed time moving while it prints nothing."""
        while not self._finished:
            await sleep(self.interval_s)
            await self.tick()

    async def _emit_if_due(self) -> None:
        async with self._lock:
            if self._finished:
                return
            now = self._monotonic()
            if self._last_emit is not None and now - self._last_emit < self.interval_s:
                return
            await self._emit(now, final=False)

    async def _emit(self, now: float, *, final: bool) -> None:
        self._last_emit = now
        self.emissions += 1
        snapshot = ProgressSnapshot(
            elapsed_s=now - self._started, last_lines=tuple(self._lines), line_count=self._count, final=final
        )
        await self._on_progress(snapshot)
