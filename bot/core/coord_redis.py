"""The coordinator for several replicas: Redis locks, once-only keys and a shared cache (see bot/core/coord.py).

Redis is an accelerator here, never a single point of failure: every call has a socket timeout, and while
Redis is unreachable the coordinator works in-process (this replica's own locks, limits and cache), logs the
outage once, counts it in /metrics, and tries Redis again every few seconds until it is back. The exactly-once
guarantees live in the database (claims, conditional UPDATEs), so they hold through the fallback too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from bot.core.coord import LocalCoordinator

log = logging.getLogger(__name__)
T = TypeVar("T")
TIMEOUT_S = 1.0  # a hung Redis costs a call at most this, then the fallback answers
RECHECK_S = 5.0  # while Redis is down, how often a call tries it again
DOWN = (RedisError, OSError, TimeoutError)


class RedisCoordinator:
    def __init__(self, url: str, prefix: str = "rollbot:", monotonic: Callable[[], float] = time.monotonic) -> None:
        # One immediate reconnect on a broken connection: after Redis restarts, every pooled connection is dead
        # and its first use would otherwise count as Redis being down again. A timeout is not retried.
        self.redis: Redis = Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT_S,
                                           socket_connect_timeout=TIMEOUT_S,
                                           retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
                                           retry_on_error=[RedisConnectionError])
        self.prefix = prefix
        self.monotonic = monotonic
        self.local = LocalCoordinator(monotonic)
        self.down_since: float | None = None
        self._last_try = 0.0
        self.metrics: Any = None  # bot.core.metrics.Metrics: redis_up, redis_fallbacks

    def _skip_redis(self) -> bool:
        return self.down_since is not None and self.monotonic() - self._last_try < RECHECK_S

    def _down(self, exc: BaseException) -> None:
        self._last_try = self.monotonic()
        if self.down_since is None:
            self.down_since = self._last_try
            log.warning("Redis unreachable (%r): working in-process until it is back", exc)
            if self.metrics is not None:
                self.metrics.redis_up.set(0)
        if self.metrics is not None:
            self.metrics.redis_fallbacks.inc()

    def _up(self) -> None:
        if self.down_since is not None:
            log.warning("Redis is back after %.0f s", self.monotonic() - self.down_since)
            self.down_since = None
        if self.metrics is not None:
            self.metrics.redis_up.set(1)

    async def _either(self, remote: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        if self._skip_redis():
            return await local()
        try:
            result = await remote()
        except DOWN as exc:
            self._down(exc)
            return await local()
        self._up()
        return result

    @asynccontextmanager
    async def lock(self, name: str, ttl: float = 30) -> AsyncIterator[None]:
        # The lock expires on its own if its holder dies, so a crashed replica never blocks the others for long.
        lock = self.redis.lock(f"{self.prefix}lock:{name}", timeout=ttl, blocking_timeout=ttl)
        acquired = False
        if not self._skip_redis():
            try:
                acquired = bool(await lock.acquire())
                self._up()
            except DOWN as exc:
                self._down(exc)
        if not acquired:
            async with self.local.lock(name, ttl):
                yield
            return
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # expired, or Redis gone: its TTL frees it either way
                await lock.release()

    async def first_time(self, key: str, ttl_seconds: float) -> bool:
        async def remote() -> bool:
            return bool(await self.redis.set(f"{self.prefix}seen:{key}", "1", nx=True,
                                             px=max(1, int(ttl_seconds * 1000))))
        return await self._either(remote, lambda: self.local.first_time(key, ttl_seconds))

    async def hit(self, key: str, ttl_seconds: float) -> int:
        async def remote() -> int:
            full = f"{self.prefix}hit:{key}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(full)  # queued on the pipeline (redis' types call it an awaitable)
                pipe.pexpire(full, max(1, int(ttl_seconds * 1000)), nx=True)
                count, _ = await pipe.execute()
            return int(count)
        return await self._either(remote, lambda: self.local.hit(key, ttl_seconds))

    async def cache_get(self, key: str) -> Any | None:
        async def remote() -> Any | None:
            raw = await self.redis.get(f"{self.prefix}cache:{key}")
            return None if raw is None else json.loads(raw)
        return await self._either(remote, lambda: self.local.cache_get(key))

    async def cache_set(self, key: str, value: Any, ttl_seconds: float) -> None:
        async def remote() -> None:
            await self.redis.set(f"{self.prefix}cache:{key}", json.dumps(value), px=max(1, int(ttl_seconds * 1000)))
        await self._either(remote, lambda: self.local.cache_set(key, value, ttl_seconds))

    async def ping(self) -> bool:
        """For /readyz: the real state of Redis, not the fallback's."""
        try:
            ok = bool(await self.redis.ping())
        except DOWN:
            return False
        self._up()
        return ok

    async def close(self) -> None:
        await self.redis.aclose()
