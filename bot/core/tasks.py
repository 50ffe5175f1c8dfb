"""Work that continues in the background: kept referenced (an unreferenced task can be collected mid-flight),
awaited by its owner (idle, shutdown), and a failure logged rather than lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self, what: str) -> None:
        self.what = what  # for the log line of a failure: "<what> failed"
        self.running: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self.running.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", self.what, exc_info=task.exception())

    async def idle(self) -> None:
        """Until nothing runs, including what the running work spawned meanwhile."""
        while self.running:
            await asyncio.wait(set(self.running))

    async def wait(self, timeout: float) -> None:
        """What runs now, for at most `timeout` seconds (shutdown)."""
        if self.running:
            await asyncio.wait(set(self.running), timeout=timeout)
