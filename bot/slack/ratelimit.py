"""A client-side Slack rate limiter shared by every replica through the coordinator, so that together they stay
inside Slack's limits instead of learning them from 429s: per-method tiers (calls per minute) and about one
message a second per channel, with a short burst, for chat.postMessage.

Slack counts a tier over any 60 seconds (a sliding window) and a channel's messages as a token bucket; the
coordinator only counts hits in fixed windows. Fixed windows with a full minute's allowance let twice the tier
through around a window's edge (the 429s of issue 19), so the allowance is spread over shorter windows such
that any 60 seconds, wherever they start, hold at most the tier: `TIER_WINDOWS` windows a minute, each allowing
tier // (TIER_WINDOWS + 1), since 60 seconds touch at most TIER_WINDOWS + 1 of them. Likewise a channel gets
half its burst per (half burst / rate) seconds: two such windows back to back are one burst, and the rate holds.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from bot.core.coord import Coordinator
from bot.slack.tiers import METHOD_TIERS, TIERS

CHANNEL_METHODS = {"chat.postMessage", "chat.postEphemeral"}
CHANNEL_BURST = 8  # messages at once per channel (Slack allows short bursts over its 1/s)
CHANNEL_PER_SECOND = 1.0
TIER_WINDOWS = 4  # a minute in 15 s windows: 80 % of a tier usable, a fifth of it at once


class SlackRateLimiter:
    def __init__(self, coord: Coordinator, scale: float = 1.0, now: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.coord = coord
        self.scale = scale  # >1 allows more (an accelerated demo clock); 0 turns the limiter off
        self.now = now
        self.sleep = sleep
        self.waited = 0.0

    def budget(self, method: str, channel: str | None) -> tuple[str, float, int] | None:
        """(key, window seconds, calls allowed in it) for this call, or None when it is not limited."""
        if self.scale <= 0:
            return None
        if method in CHANNEL_METHODS:
            if not channel:
                return None
            half_burst = max(1, int(CHANNEL_BURST * self.scale) // 2)
            return f"chan:{channel}", half_burst / (CHANNEL_PER_SECOND * self.scale), half_burst
        per_minute = TIERS[METHOD_TIERS.get(method, 3)] * self.scale
        if per_minute < TIER_WINDOWS + 1:  # tier 1 (apps.connections.open, at connect) cannot be split
            return f"method:{method}", 60.0, max(1, int(per_minute))
        return f"method:{method}", 60.0 / TIER_WINDOWS, int(per_minute // (TIER_WINDOWS + 1))

    async def acquire(self, method: str, channel: str | None = None) -> float:
        """Wait, if need be, until this call fits its budget; returns the seconds waited."""
        budget = self.budget(method, channel)
        if budget is None:
            return 0.0
        key, window, allowed = budget
        waited = 0.0
        while True:
            now = self.now()
            index = math.floor(now / window)
            if await self.coord.hit(f"slack-rate:{key}:{index}", window * 2) <= allowed:
                self.waited += waited
                return waited
            pause = (index + 1) * window - now
            waited += pause
            await self.sleep(pause)
