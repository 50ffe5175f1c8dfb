"""Simulated time for the demo that cannot lose a race with a slow machine.

The clock is a FakeClock that only this driver moves. Whenever the bot is idle (no background work, no running
action) and every simulated person is waiting (for a time of their choosing, or for something to show up in
Slack that has not yet), the clock jumps to the next due thing: the earliest pending durable timer or the
earliest time a person said they would act. So the simulated timeline depends only on what happens, never on
how fast the machine is; `pace` (simulated seconds per real second) only slows the jumps down for watching.

At Slack's real rate limits the bot's Slack call queue and rate limiter wait on this clock too (`sleep`): the
bot then counts as idle when all its unfinished work waits for simulated time (calls queued for a rate-limit
window or a message's next update, none in flight, no database session open), and the clock jumps to the
earliest of the timers, the people and those waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, func, select

from bot.app import Rollbot
from bot.core.clock import FakeClock
from bot.store.models import Timer

PARKED_FOR_TIME = -1  # a person waiting for a simulated time: nothing to re-check
SETTLE_REAL_SECONDS = 0.02  # a short real pause so sockets and callbacks get their turn before "idle" is believed


class Stuck(RuntimeError):
    """Nobody can move: the bot is idle, everyone waits for something, and nothing is scheduled."""


class Simulation:
    def __init__(self, bot: Rollbot, clock: FakeClock, pace: float | None = None,
                 on_quiet: Callable[[], None] = lambda: None) -> None:
        self.bot = bot
        self.on_quiet = on_quiet  # before each jump: the printer shows what happened at the time it happened
        self.clock = clock
        self.pace = pace
        self.actors = 0  # simulated people (coroutines) taking part
        self.parked: dict[int, int] = {}  # actor token -> epoch of its last failed check, or PARKED_FOR_TIME
        self.epoch = 0
        self.stuck = False
        self._pulse = asyncio.Event()
        self._wakeups: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._sleeps: list[tuple[datetime, int, asyncio.Future[None]]] = []  # the bot's Slack calls waiting
        self._ticking: asyncio.Task[Any] | None = None
        self._free_running = False
        self.delivering = 0  # requests on their way to the bot
        self._tokens = itertools.count()
        self._task: asyncio.Task[None] | None = None

    # --- for the simulated people ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._drive(), name="demo-simulated-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # Nobody moves the clock now: the bot's last Slack calls (a refresh) move it themselves as they wait.
        self._free_running = True
        while (when := self._next_sleep()) is not None:
            self.clock.set(max(when, self.clock.now()))
            heapq.heappop(self._sleeps)[2].set_result(None)

    async def act(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run `coro` as one more simulated person."""
        self.actors += 1
        try:
            return await coro
        finally:
            self.actors -= 1

    async def gather(self, *coros: Coroutine[Any, Any, Any]) -> list[Any]:
        """The calling person waits (parked) while the others act side by side."""
        token = next(self._tokens)
        self.parked[token] = PARKED_FOR_TIME
        try:
            return list(await asyncio.gather(*(self.act(c) for c in coros)))
        finally:
            del self.parked[token]

    async def until(self, when: datetime) -> None:
        """Wait until simulated time reaches `when` (the driver jumps there when nothing else can happen first)."""
        if self.clock.now() >= when:
            return
        token = next(self._tokens)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._wakeups, (when, token, future))
        self.parked[token] = PARKED_FOR_TIME
        try:
            await future
        finally:
            del self.parked[token]

    async def wait_for(self, check: Callable[[], Any], what: str, simulated_minutes: float = 30) -> Any:
        """Until `check()` is truthy. While it is not, this person counts as waiting; simulated time may move on
        (to a timer) while they wait, but not past `simulated_minutes`, and not when nothing at all is due."""
        token = next(self._tokens)
        started = self.clock.now()
        try:
            while True:
                epoch = self.epoch
                self.parked.pop(token, None)
                result = check()
                if isinstance(result, Awaitable):
                    result = await result
                if result:
                    return result
                if self.stuck or (self.clock.now() - started).total_seconds() > simulated_minutes * 60:
                    raise Stuck(f"timed out waiting for {what}")
                self.parked[token] = epoch
                pulse = self._pulse
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(pulse.wait(), timeout=0.05)
        finally:
            self.parked.pop(token, None)

    # --- for the bot's Slack call queue and rate limiter (Slack's real limits on simulated time) ----------

    def slack_now(self) -> float:
        return self.clock.now().timestamp()

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of simulated time (the driver moves the clock there when nothing else can happen)."""
        if seconds <= 0 or self._free_running:
            if seconds > 0:
                self.clock.advance(seconds)
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleeps, (self.clock.now() + timedelta(seconds=seconds), next(self._tokens), future))
        await future  # cancelled (a queue woken early): the entry is dropped when it reaches the top

    def _next_sleep(self) -> datetime | None:
        while self._sleeps and self._sleeps[0][2].done():
            heapq.heappop(self._sleeps)
        return self._sleeps[0][0] if self._sleeps else None

    def _waiting_on_time(self) -> bool:
        """All the bot's unfinished work waits for simulated time: some Slack call waits for a window, none is
        under way, and no database session is open."""
        if self._next_sleep() is None:
            return False
        queue = getattr(self.bot.svc.slack.client, "queue", None)
        pool = self.bot.db.engine.sync_engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
        return (queue is None or queue.running == 0) and checked_out == 0

    def _pending(self, executions: bool = True) -> set[asyncio.Task[Any]]:
        """The bot's unfinished work: its own tasks, Bolt's work after an ack, running actions, a timer tick."""
        tasks = self.bot.pending()
        if executions:
            tasks |= set(self.bot.executions.tasks.running)
        if self._ticking is not None and not self._ticking.done():
            tasks.add(self._ticking)
        return tasks

    async def _settle(self, executions: bool = True) -> None:
        """Until the bot's work is done, or all of it waits for simulated time."""
        while True:
            pending = self._pending(executions)
            if not pending or self._waiting_on_time():
                return
            await asyncio.wait(pending, timeout=SETTLE_REAL_SECONDS, return_when=asyncio.FIRST_COMPLETED)

    async def deliver(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """A person's request on its way to the bot (until the ack): simulated time moves meanwhile only when the
        bot waits for it, as Slack's clock runs on while an app takes its time to answer."""
        token = next(self._tokens)
        self.parked[token] = PARKED_FOR_TIME
        self.delivering += 1
        try:
            return await coro
        finally:
            self.delivering -= 1
            del self.parked[token]

    async def after_work(self) -> None:
        """A person waits for the bot's work to be done (Slack showing the result of their click); simulated time
        may move meanwhile, when that work waits for it."""
        token = next(self._tokens)
        self.parked[token] = PARKED_FOR_TIME
        try:
            while pending := self._pending(executions=False):
                await asyncio.wait(pending, timeout=SETTLE_REAL_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            del self.parked[token]

    # --- the driver ----------------------------------------------------------------------------------------

    async def _bot_idle(self) -> None:
        await self._settle()
        await self._settle()
        while self._busy():  # noqa: ASYNC110 (a request being handled has no task of ours to wait on: look again)
            await asyncio.sleep(SETTLE_REAL_SECONDS)

    def _busy(self) -> bool:
        if self.delivering:  # a request being handled leaves no task of ours to see: only a wait for time counts
            return not self._waiting_on_time()
        return bool(self._pending()) and not self._waiting_on_time()

    async def _quiet(self) -> bool:
        """Idle, and every person waits: for a time, or on a check that failed after the bot settled."""
        await self._bot_idle()
        self.epoch += 1
        pulse, self._pulse = self._pulse, asyncio.Event()
        pulse.set()  # everyone waiting on a check looks again
        while True:
            await asyncio.sleep(SETTLE_REAL_SECONDS)
            if self._busy():
                return False
            if len(self.parked) >= self.actors and all(
                    e == PARKED_FOR_TIME or e == self.epoch for e in self.parked.values()):
                return True

    async def _settle_on(self, task: asyncio.Task[Any]) -> None:
        while not task.done() and not self._waiting_on_time():
            await asyncio.wait({task}, timeout=SETTLE_REAL_SECONDS)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _next_timer(self) -> datetime | None:
        async with self.bot.db.session() as session:
            due = (await session.exec(select(func.min(Timer.due_at)).where(col(Timer.status) == "pending"))).one()
        if due is None:
            return None
        return due if due.tzinfo else due.replace(tzinfo=self.clock.now().tzinfo)

    async def _drive(self) -> None:
        while True:
            if not await self._quiet():
                continue
            self.on_quiet()
            timer = await self._next_timer()
            person = self._wakeups[0][0] if self._wakeups else None
            candidates = [t for t in (timer, person, self._next_sleep()) if t is not None]
            if not candidates:
                if self.parked and self.actors:
                    self.stuck = True  # the waiters see it and fail, naming what they waited for
                await asyncio.sleep(0.05)
                continue
            target = max(min(candidates), self.clock.now())
            step = (target - self.clock.now()).total_seconds()
            if self.pace and step > 0:
                await asyncio.sleep(step / self.pace)  # only for watching: the timeline is the same at any pace
            self.clock.set(target)
            while (sleep := self._next_sleep()) is not None and sleep <= self.clock.now():
                heapq.heappop(self._sleeps)[2].set_result(None)
            if self._ticking is None or self._ticking.done():
                # A task, so that a timer's Slack call waiting for a rate-limit window cannot hold the clock.
                self._ticking = asyncio.create_task(self.bot.svc.timers.tick(), name="demo-timer-tick")
                await self._settle_on(self._ticking)
            while self._wakeups and self._wakeups[0][0] <= self.clock.now():
                _when, _token, future = heapq.heappop(self._wakeups)
                if not future.done():
                    future.set_result(None)
