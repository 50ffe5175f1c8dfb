"""This replica's heartbeat: it renews the leases of what runs here, acts on Cancel requests and timeouts, and
marks a run whose lease ran out (its process is gone) interrupted, with a Retry button; nothing is re-run by
itself. Between sweeps it lets the progress throttles post what is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from bot.core import timeline
from bot.core.services import Services
from bot.executions import store
from bot.executions.rendering import Renderer
from bot.executions.requests import Requests
from bot.executions.runs import LEASE, LiveRuns

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # clock seconds between lease renewals (and sweeps for expired leases)
POLL_SECONDS = 0.5  # real seconds between looks at the clock; timers and tests wake the loop sooner


class Heartbeat:
    def __init__(self, svc: Services, runs: LiveRuns, requests: Requests, rendering: Renderer) -> None:
        self.svc = svc
        self.runs = runs
        self.requests = requests
        self.rendering = rendering
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._last_sweep: float | None = None

    async def start(self) -> None:
        """Mark executions whose lease expired as interrupted, then keep the heartbeat going. A replica
        restarted under the same id (ROLLBOT_REPLICA_ID) runs nothing yet, so a run still leased to it was its
        previous life's: interrupted at once, not after its lease runs out."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            left = await store.left_by(session, self.svc.settings.replica_id)
        for execution_id in left:
            await self.interrupt(execution_id, now, store.owned_by(self.svc.settings.replica_id))
        await self.sweep()
        self._loop_task = asyncio.create_task(self._loop(), name="executions-heartbeat")

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    def wake(self) -> None:
        self._wake.set()

    async def sweep(self) -> list[str]:
        """Renew our leases, act on Cancel requests and timeouts, and mark executions whose lease expired as
        interrupted. Runs at start-up and every heartbeat; returns the ids it marked interrupted."""
        now = self.svc.clock.now()
        self._last_sweep = self.svc.clock.monotonic()
        mine = list(self.runs.live)
        async with self.svc.db.session() as session:
            await store.renew_leases(session, mine, self.svc.settings.replica_id, now + LEASE)
            rows = await store.running_ids(session, mine)
            orphans = await store.expired(session, now, exclude=mine)
        for row in rows:
            live = self.runs.live.get(row.id)
            if live is None or live.reason is not None:
                continue
            if row.cancel_requested_by:
                live.row.cancel_requested_by = row.cancel_requested_by
                self.runs.stop(live, "cancel")
            elif now >= live.timeout_at:
                self.runs.stop(live, "timeout")
        interrupted = [i for i in orphans if await self.interrupt(i, now)]
        for live in list(self.runs.live.values()):
            await live.throttle.tick()
        return interrupted

    async def interrupt(self, execution_id: str, now: datetime, gone: Any = None) -> bool:
        """`gone`: the condition that its process is gone (by default, its lease ran out)."""
        async with self.svc.db.session() as session:
            row = await store.get(session, execution_id)
            if row is None:
                return False
            owner = row.lease_owner or "an unknown replica"
            ok = await store.transition(
                session, execution_id, ("running",), "interrupted",
                store.lease_expired(now) if gone is None else gone, finished_at=now,
                detail=f"lease held by {owner} expired: its process is gone. Not re-run; Retry to run it again."
                if gone is None else f"{owner} restarted while it ran. Not re-run; Retry to run it again.")
            if ok:
                timeline.record(session, row.incident_id, now, "execution_interrupted",
                                f"{self.requests.title(row)} interrupted: the bot running it stopped; it was not re-run",
                                execution=row.id, lease_owner=row.lease_owner)
                finished = await self.svc.events.emit(
                    "execution_finished", session, change=f"{row.id}:interrupted", incident_id=row.incident_id,
                    execution_id=row.id, action_id=row.action_id, outcome="interrupted")
        if not ok:
            return False
        await self.rendering.render(execution_id)
        await self.svc.events.deliver(finished)
        return True

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
            self._wake.clear()
            try:
                due = self._last_sweep is None or \
                    self.svc.clock.monotonic() - self._last_sweep >= HEARTBEAT_SECONDS
                if due:
                    await self.sweep()
                else:
                    for live in list(self.runs.live.values()):
                        await live.throttle.tick()
            except Exception:
                log.exception("execution heartbeat failed")
