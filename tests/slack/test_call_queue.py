"""The Slack call queue on a virtual clock: the most urgent call takes the next slot, no budget (method tier,
channel rate) is ever exceeded, and re-renders of one message are coalesced (at most one per interval) and land
in order. Nothing here waits on real time."""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from bot.core.coord import LocalCoordinator
from bot.slack.queue import Priority, SlackCallQueue
from bot.slack.ratelimit import CHANNEL_BURST, SlackRateLimiter
from bot.slack.tiers import METHOD_TIERS, TIERS
from tests.support.harness import harness


class VirtualTime:
    """A clock that jumps forward whenever someone sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


def make_queue(scale: float = 1.0, refresh_interval: float = 1.0) -> tuple[SlackCallQueue, VirtualTime]:
    vt = VirtualTime()
    limiter = SlackRateLimiter(LocalCoordinator(vt.now), scale, now=vt.now, sleep=vt.sleep)
    return SlackCallQueue(limiter, refresh_interval=refresh_interval, now=vt.now, sleep=vt.sleep), vt


class Recorder:
    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.sent: list[tuple[float, str, str]] = []  # (virtual time, method, what)

    def call(self, method: str, what: str) -> Callable[[], Awaitable[str]]:
        def run() -> Awaitable[str]:  # noted when the queue sends it, not when the answer is read
            self.sent.append((self.vt.now(), method, what))
            return self._answer(what)
        return run

    @staticmethod
    async def _answer(what: str) -> str:
        return what


async def test_the_most_urgent_call_takes_the_next_slot() -> None:
    queue, vt = make_queue(scale=0.05)  # conversations.create (tier 2): one call a minute
    rec = Recorder(vt)
    submitted = [(Priority.REFRESH, "header"), (Priority.STEP, "step"), (Priority.PAGE, "page"),
                 (Priority.URGENT, "decision")]
    results = await asyncio.gather(*(queue.submit("conversations.create", None, rec.call("conversations.create", w),
                                                  priority=p) for p, w in submitted))
    assert results == ["header", "step", "page", "decision"]  # every caller gets its own answer
    assert [what for _, _, what in rec.sent] == ["decision", "page", "step", "header"]
    windows = [math.floor(t / 60) for t, _, _ in rec.sent]
    assert len(set(windows)) == 4  # one per minute, as the tier (scaled) allows


async def test_a_flood_of_calls_never_exceeds_a_method_tier_or_a_channel_rate() -> None:
    queue, vt = make_queue()
    rec = Recorder(vt)
    jobs = []
    for i in range(130):  # chat.update, tier 4: 100 a minute; distinct messages, nothing to coalesce
        jobs.append(queue.submit("chat.update", "C1", rec.call("chat.update", f"u{i}"), message=("C1", f"{i}.0"),
                                 priority=Priority.STEP))
    for i in range(45):  # conversations.create, tier 2: 20 a minute
        jobs.append(queue.submit("conversations.create", None, rec.call("conversations.create", f"c{i}")))
    for i in range(30):  # chat.postMessage in one channel: a short burst a second
        jobs.append(queue.submit("chat.postMessage", "C2", rec.call("chat.postMessage", f"p{i}")))
    await asyncio.gather(*jobs)
    assert len(rec.sent) == 205
    per_minute = Counter((method, math.floor(t / 60)) for t, method, _ in rec.sent if method != "chat.postMessage")
    for (method, _), count in per_minute.items():
        assert count <= TIERS[METHOD_TIERS[method]], (method, count)
    per_second = Counter(math.floor(t) for t, method, _ in rec.sent if method == "chat.postMessage")
    assert max(per_second.values()) <= CHANNEL_BURST


async def test_a_burst_of_header_refreshes_costs_one_update_per_message_per_interval() -> None:
    queue, vt = make_queue()
    rec = Recorder(vt)
    message = ("C1", "1.0")

    def refresh(n: int) -> asyncio.Future[str]:
        return asyncio.ensure_future(queue.submit("chat.update", "C1", rec.call("chat.update", f"render {n}"),
                                                  priority=Priority.REFRESH, message=message))

    first = [refresh(n) for n in range(10)]  # all queued before the queue runs: one call, the newest render
    assert await asyncio.gather(*first) == ["render 9"] * 10
    assert [what for _, _, what in rec.sent] == ["render 9"]
    second = [refresh(n) for n in range(10, 20)]  # right after: waits out the interval, then the newest again
    assert await asyncio.gather(*second) == ["render 19"] * 10
    assert [what for _, _, what in rec.sent] == ["render 9", "render 19"]
    assert rec.sent[1][0] - rec.sent[0][0] >= 1.0
    assert queue.coalesced == 18


async def test_renders_of_one_message_land_in_order_one_at_a_time() -> None:
    queue, vt = make_queue()
    in_flight: Counter[str] = Counter()
    order: list[int] = []
    gate = asyncio.Event()

    def render(n: int, ts: str = "1.0") -> Callable[[], Awaitable[int]]:
        async def run() -> int:
            in_flight[ts] += 1
            assert in_flight[ts] == 1, "two calls for one message at once"
            if n == 0:
                await gate.wait()  # the first render is slow to answer
            order.append(n)
            in_flight[ts] -= 1
            return n
        return run

    first = asyncio.ensure_future(queue.submit("chat.update", "C1", render(0), message=("C1", "1.0")))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(queue.submit("chat.update", "C1", render(n), message=("C1", "1.0")))
             for n in (1, 2)]
    other = await queue.submit("chat.update", "C1", render(7, "2.0"), message=("C1", "2.0"))  # another message: not held
    assert other == 7 and order == [7]
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*later) == [2, 2]  # the queued renders became one, the newest
    assert order == [7, 0, 2]


async def test_a_failed_call_fails_every_caller_it_answered() -> None:
    queue, _ = make_queue()

    async def fails() -> None:
        raise SlackApiError("message_not_found", {"ok": False, "error": "message_not_found"})

    calls = [queue.submit("chat.update", "C1", fails, message=("C1", "1.0"), priority=Priority.REFRESH)
             for _ in range(3)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, SlackApiError) for r in results)


@pytest.mark.parametrize("refresh_seconds", ["1"])
async def test_the_bot_coalesces_a_burst_of_header_refreshes(tmp_path: Path, refresh_seconds: str) -> None:
    async with harness(tmp_path, ROLLBOT_SLACK_REFRESH_SECONDS=refresh_seconds) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        header = await h.bot.svc.slack.message_ref(incident.id, "header")
        assert header is not None
        await h.quiet()
        h.clock.advance(60)  # the header's elapsed minutes move on: a render that changes it (an unchanged one is not sent)
        before = len(h.sb.calls)
        await asyncio.gather(*(h.bot.warroom.refresh(incident.id) for _ in range(8)))
        updates = [c for c in h.sb.calls[before:] if c["method"] == "chat.update"
                   and c["args"].get("ts") == header.ts]
        assert 1 <= len(updates) <= 2  # eight re-renders: the first, then at most one for all the rest
