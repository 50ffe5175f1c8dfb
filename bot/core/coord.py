"""Where several replicas must agree: locks, once-only keys and a shared cache, behind one small interface.

`LocalCoordinator` is the embedded default (one process); a Redis implementation serves a cluster.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol


class Coordinator(Protocol):
    def lock(self, name: str, ttl: float = 30) -> AbstractAsyncContextManager[None]: ...

    async def first_time(self, key: str, ttl_seconds: float) -> bool:
        """True for the first caller of `key` within the ttl, False for every repeat."""
        ...

    async def cache_get(self, key: str) -> Any | None: ...

    async def hit(self, key: str, ttl_seconds: float) -> int:
        """Count one more use of `key` (shared by every replica); returns the count so far."""
        ...

    async def cache_set(self, key: str, value: Any, ttl_seconds: float) -> None: ...

    async def close(self) -> None: ...


class LocalCoordinator:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._seen: dict[str, float] = {}
        self._cache: dict[str, tuple[float, str]] = {}
        self._hits: dict[str, tuple[int, float]] = {}

    @asynccontextmanager
    async def lock(self, name: str, ttl: float = 30) -> AsyncIterator[None]:
        async with self._locks[name]:
            yield

    async def first_time(self, key: str, ttl_seconds: float) -> bool:
        now = self._monotonic()
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl_seconds
        if len(self._seen) > 10_000:  # keep memory bounded
            self._seen = {k: v for k, v in self._seen.items() if v > now}
        return True

    async def hit(self, key: str, ttl_seconds: float) -> int:
        now = self._monotonic()
        count, expires = self._hits.get(key, (0, now + ttl_seconds))
        if expires <= now:
            count, expires = 0, now + ttl_seconds
        self._hits[key] = (count + 1, expires)
        if len(self._hits) > 10_000:
            self._hits = {k: v for k, v in self._hits.items() if v[1] > now}
        return count + 1

    async def cache_get(self, key: str) -> Any | None:
        hit = self._cache.get(key)
        if hit is None or hit[0] <= self._monotonic():
            return None
        return json.loads(hit[1])

    async def cache_set(self, key: str, value: Any, ttl_seconds: float) -> None:
        # Stored as JSON so both back ends hand back equal, independent copies.
        self._cache[key] = (self._monotonic() + ttl_seconds, json.dumps(value))

    async def close(self) -> None:
        return None
