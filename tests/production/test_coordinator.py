"""The in-process and the Redis coordinators keep the same promises (locks, once-only keys, a shared cache)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.clock import FakeClock
from bot.core.coord import LocalCoordinator
from tests.support.services import require_redis


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def coords(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Any]]:
    """Two coordinators that must agree with each other: two replicas' views of the same shared state."""
    if request.param == "local":
        clock = FakeClock()
        local = LocalCoordinator(clock.monotonic)
        yield local, local
        return
    from bot.core.coord_redis import RedisCoordinator

    url = require_redis()
    prefix = f"rollbot-test-{secrets.token_hex(4)}:"
    a, b = RedisCoordinator(url, prefix), RedisCoordinator(url, prefix)
    yield a, b
    keys = [k async for k in a.redis.scan_iter(f"{prefix}*")]
    if keys:
        await a.redis.delete(*keys)
    await a.close()
    await b.close()


async def test_first_time_is_true_once_across_replicas(coords: tuple[Any, Any]) -> None:
    a, b = coords
    results = await asyncio.gather(*(c.first_time("event:Ev1", 60) for c in (a, b, a, b)))
    assert sorted(results) == [False, False, False, True]
    assert await b.first_time("event:Ev2", 60)


async def test_the_cache_is_shared_and_returns_copies(coords: tuple[Any, Any]) -> None:
    a, b = coords
    assert await a.cache_get("roles:group:S1") is None
    value = ["U1", "U2"]
    await a.cache_set("roles:group:S1", value, 60)
    value.append("U3")
    assert await b.cache_get("roles:group:S1") == ["U1", "U2"]


async def test_a_lock_serializes_critical_sections(coords: tuple[Any, Any]) -> None:
    a, b = coords
    inside: list[int] = []
    overlaps: list[bool] = []

    async def work(coord: Any, n: int) -> None:
        async with coord.lock("warroom:inc-1", 5):
            inside.append(n)
            overlaps.append(len(inside) > 1)
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(work(c, i) for i, c in enumerate([a, b, a, b])))
    assert overlaps == [False] * 4


async def test_local_cache_and_dedup_expire_on_the_clock() -> None:
    clock = FakeClock()
    local = LocalCoordinator(clock.monotonic)
    await local.cache_set("k", 1, 10)
    assert await local.first_time("e", 10)
    clock.advance(11)
    assert await local.cache_get("k") is None
    assert await local.first_time("e", 10)


async def test_hit_counts_are_shared_by_replicas(coords: tuple[Any, Any]) -> None:
    a, b = coords
    counts = [await c.hit("rate:k", 60) for c in (a, b, a)]
    assert counts == [1, 2, 3]


async def test_replicas_together_stay_inside_a_methods_tier(coords: tuple[Any, Any]) -> None:
    """conversations.create is tier 2 (20 in any 60 s, as Slack counts): however the calls of both replicas fall,
    no 60 s hold more than 20; a burst goes out at once up to a fifth of the tier, the rest waits its window."""
    from bot.sandbox.limits import RateLimits
    from bot.slack.ratelimit import CHANNEL_BURST, SlackRateLimiter

    now = [1_800_000_000.0 + 5]  # 5 s into a minute
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    replicas = [SlackRateLimiter(c, now=lambda: now[0], sleep=sleep) for c in coords]
    sent: list[float] = []
    for i in range(60):
        await replicas[i % 2].acquire("conversations.create")
        sent.append(now[0])
    assert sent[:4] == [sent[0]] * 4 and sent[4] == sent[0] + 10  # the next 15 s window
    for start in sent:  # Slack's sliding minute, starting at every call
        assert sum(1 for t in sent if start <= t < start + 60) <= 20
    assert sent[-1] - sent[0] < 60 * 60 / 16  # and still ~80 % of the tier: 16 a minute

    posted: list[float] = []
    for i in range(30):  # one channel: Slack's bucket of 8 refilled at 1 a second
        await replicas[i % 2].acquire("chat.postMessage", "C1")
        posted.append(now[0])
    assert posted[: CHANNEL_BURST // 2] == [posted[0]] * (CHANNEL_BURST // 2)
    slack = RateLimits(clock=lambda: clock[0])  # the sandbox's model of Slack: sliding minute, channel bucket
    clock = [0.0]
    for at in posted:
        clock[0] = at
        assert slack.check("chat.postMessage", "C1") is None, "Slack would have answered 429"
    for at in sent:
        clock[0] = at
        assert slack.check("conversations.create", None) is None, "Slack would have answered 429"
    assert await SlackRateLimiter(coords[0], scale=0).acquire("conversations.create") == 0.0
