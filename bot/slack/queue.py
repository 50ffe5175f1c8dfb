"""A prioritized queue in front of every Slack Web API call.

When a rate-limit budget (a method's tier, a channel's posting rate: bot/slack/ratelimit.py) is short, what a person
is waiting on goes first: follow-ups of an ack and decisions, then pages, then step updates, and header refreshes
last. Calls for the same message (same channel and ts) wait for each other, so renders land in order, and a
newer render replaces one still queued; an update of a message starts no sooner than `refresh_interval` after the
previous one for that message was answered, so a burst of re-renders (ticks, header refreshes) costs at most one
chat.update per message per second, wherever Slack's clock counts it.

Each budget has a lane: one worker per lane takes a slot from the rate limiter, then starts the most urgent
queued call that may go now (the slot is the lane's, so any of its calls may use it). Calls are started, not
awaited, by the worker: a slow Slack answer delays nobody else. Nothing here knows Slack's methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bot.slack.ratelimit import SlackRateLimiter


class Priority(IntEnum):
    URGENT = 0  # someone just acted and waits: ack follow-ups (views, ephemerals), decisions, approvals
    PAGE = 1  # pages and escalation DMs
    STEP = 2  # step checklists, progress, thread posts: the default
    REFRESH = 3  # header re-renders: last, and coalesced per message


# What the gateway knows about the call being made in this task; read by the client at the call.
call_priority: ContextVar[Priority | None] = ContextVar("slack_call_priority", default=None)
call_message: ContextVar[tuple[str, str] | None] = ContextVar("slack_call_message", default=None)

# Methods that answer a person's action in a request (trigger ids expire in 3 s): urgent whatever the context.
URGENT_METHODS = frozenset({"views.open", "views.push", "views.update", "chat.postEphemeral"})


@contextlib.contextmanager
def slack_call(priority: Priority | None, message: tuple[str, str] | None = None) -> Iterator[None]:
    """Calls made inside go out at `priority`; `message` (channel, ts) marks updates of one message."""
    tokens = (call_priority.set(priority), call_message.set(message))
    try:
        yield
    finally:
        call_priority.reset(tokens[0])
        call_message.reset(tokens[1])


@dataclass
class _Call:
    priority: int
    seq: int
    method: str
    channel: str | None
    lane: str
    run: Callable[[], Awaitable[Any]]
    message: tuple[str, str] | None
    futures: list[asyncio.Future[Any]] = field(default_factory=list)


@dataclass
class _Lane:
    calls: list[_Call] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None


class SlackCallQueue:
    def __init__(self, limiter: SlackRateLimiter, *, refresh_interval: float = 1.0,
                 now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.limiter = limiter
        self.refresh_interval = refresh_interval
        self.now = now
        self.sleep = sleep
        self._lanes: dict[str, _Lane] = {}
        self._seq = itertools.count()
        self._in_flight: set[tuple[str, str]] = set()  # messages with a call under way
        self._last_update: dict[tuple[str, str], float] = {}  # message -> when its last update was answered
        self.running = 0  # calls started and not yet answered
        self.coalesced = 0  # calls answered by a newer render of the same message instead of their own

    async def submit(self, method: str, channel: str | None, run: Callable[[], Awaitable[Any]], *,
                     priority: Priority | None = None, message: tuple[str, str] | None = None) -> Any:
        """Run `run` (the Web API call) when its budget and its turn allow; return (or raise) what it does."""
        if priority is None:
            priority = Priority.URGENT if method in URGENT_METHODS else Priority.STEP
        budget = self.limiter.budget(method, channel)
        if budget is None and message is None:  # not limited (pacing off): straight through, still counted
            self.running += 1
            try:
                return await run()
            finally:
                self.running -= 1
        key = budget[0] if budget is not None else f"free:{method}"
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        queued = next((c for c in lane.calls if message is not None and c.message == message), None)
        if queued is not None:
            # A newer render of a message still waiting: send this one instead, once, and answer both callers.
            queued.run, queued.method, queued.channel = run, method, channel
            queued.priority = min(queued.priority, priority)
            queued.futures.append(future)
            self.coalesced += 1
        else:
            lane.calls.append(_Call(priority, next(self._seq), method, channel, key, run, message, [future]))
        lane.wake.set()
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.create_task(self._work(key, lane, budget is not None))
        return await future

    def _ready_at(self, call: _Call) -> float | None:
        """When `call` may start (None: not before its message's call under way ends)."""
        if call.message is None:
            return 0.0
        if call.message in self._in_flight:
            return None
        last = self._last_update.get(call.message)
        return 0.0 if last is None else last + self.refresh_interval

    def _next(self, lane: _Lane) -> tuple[_Call | None, float | None]:
        """The most urgent call that may start now, else when the earliest waiting one may."""
        now = self.now()
        best: _Call | None = None
        soonest: float | None = None
        for call in lane.calls:
            ready = self._ready_at(call)
            if ready is not None and ready <= now:
                if best is None or (call.priority, call.seq) < (best.priority, best.seq):
                    best = call
            elif ready is not None:
                soonest = ready if soonest is None else min(soonest, ready)
        return best, soonest

    async def _work(self, key: str, lane: _Lane, limited: bool) -> None:
        try:
            while lane.calls:
                lane.wake.clear()
                call, soonest = self._next(lane)
                if call is None:
                    await self._wait(lane, None if soonest is None else soonest - self.now())
                    continue
                if limited:
                    await self.limiter.acquire(call.method, call.channel)
                    # A more urgent call may have come in while we waited for the slot: it gets it.
                    call = self._next(lane)[0] or call
                lane.calls.remove(call)
                self._start(call)
        except BaseException as exc:  # the limiter failed (coordinator down) or shutdown: no caller waits forever
            for call in lane.calls:
                for future in call.futures:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:
                        future.cancel()
            lane.calls.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            if self._lanes.get(key) is lane and not lane.calls:
                del self._lanes[key]

    async def _wait(self, lane: _Lane, delay: float | None) -> None:
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(lane.wake.wait())]
        if delay is not None:
            waits.append(asyncio.ensure_future(self.sleep(max(delay, 0.0))))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _start(self, call: _Call) -> None:
        if call.message is not None:
            self._in_flight.add(call.message)
        self.running += 1
        task = asyncio.ensure_future(call.run())
        task.add_done_callback(lambda done: self._finished(call, done))

    def _finished(self, call: _Call, done: asyncio.Future[Any]) -> None:
        self.running -= 1
        for future in call.futures:
            if future.done():
                continue
            if done.cancelled():
                future.cancel()
            elif done.exception() is not None:
                future.set_exception(done.exception())  # type: ignore[arg-type]
            else:
                future.set_result(done.result())
        if call.message is not None:
            now = self.now()
            if len(self._last_update) > 1000:  # forget messages not updated for a while
                self._last_update = {m: t for m, t in self._last_update.items() if now - t < self.refresh_interval}
            self._last_update[call.message] = now
            self._in_flight.discard(call.message)
            lane = self._lanes.get(call.lane)
            if lane is not None:
                lane.wake.set()  # the message's next render may go now
