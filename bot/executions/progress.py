"""One execution's progress message, kept current without slowing the action down.

The throttle (actions/progress.py) decides when a snapshot is due (at most one a second, by the injected
clock); this poster hands it to Slack from its own task, so a slow or rate-limited chat.update never blocks
the line pump. Only the newest snapshot matters: older ones waiting are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from actions.progress import ProgressSnapshot

log = logging.getLogger(__name__)
Render = Callable[[ProgressSnapshot], Awaitable[None]]


class ProgressPoster:
    def __init__(self, render: Render) -> None:
        self._render = render
        self._latest: ProgressSnapshot | None = None
        self._wake = asyncio.Event()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.posted = 0
        self.last: ProgressSnapshot | None = None  # the newest snapshot seen (the final render reuses its lines)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def push(self, snapshot: ProgressSnapshot) -> None:
        """The throttle's callback: remember the newest snapshot and return at once."""
        self._latest = self.last = snapshot
        self._wake.set()

    async def close(self) -> None:
        """Post what is pending, then stop (the caller renders the final state itself)."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            snapshot, self._latest = self._latest, None
            if snapshot is not None and not snapshot.final:
                try:
                    await self._render(snapshot)
                    self.posted += 1
                except Exception:  # Slack trouble must not stop the action; the final render retries
                    log.warning("progress update failed", exc_info=True)
            if self._closed and self._latest is None:
                return
