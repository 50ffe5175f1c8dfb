"""The coordinator for several replicas: Redis locks, once-only keys and a shared cache (see bot/coord.py)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis


class RedisCoordinator:
    def __init__(self, url: str, prefix: str = "rollbot:") -> None:
        self.redis: Redis = Redis.from_url(url, decode_responses=True)
        self.prefix = prefix

    @asynccontextmanager
    async def lock(self, name: str, ttl: float = 30) -> AsyncIterator[None]:
        # The lock expires on its own if its holder dies, so a crashed replica never blocks the others for long.
        async with self.redis.lock(f"{self.prefix}lock:{name}", timeout=ttl, blocking_timeout=ttl):
            yield

    async def first_time(self, key: str, ttl_seconds: float) -> bool:
        return bool(await self.redis.set(f"{self.prefix}seen:{key}", "1", nx=True, px=max(1, int(ttl_seconds * 1000))))

    async def hit(self, key: str, ttl_seconds: float) -> int:
        full = f"{self.prefix}hit:{key}"
        async with self.redis.pipeline(transaction=True) as pipe:
            count, _ = await pipe.incr(full).pexpire(full, max(1, int(ttl_seconds * 1000)), nx=True).execute()
        return int(count)

    async def cache_get(self, key: str) -> Any | None:
        raw = await self.redis.get(f"{self.prefix}cache:{key}")
        return None if raw is None else json.loads(raw)

    async def cache_set(self, key: str, value: Any, ttl_seconds: float) -> None:
        await self.redis.set(f"{self.prefix}cache:{key}", json.dumps(value), px=max(1, int(ttl_seconds * 1000)))

    async def ping(self) -> bool:
        return bool(await self.redis.ping())

    async def close(self) -> None:
        await self.redis.aclose()
