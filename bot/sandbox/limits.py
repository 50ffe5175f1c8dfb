"""Slack's rate limits as the sandbox enforces them: per-method tiers (requests per minute, with Slack's
allowance for short bursts) and about one message a second per channel. Answered with 429 + Retry-After."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.slack.tiers import METHOD_TIERS, TIERS

SPECIAL = {"chat.postMessage", "chat.postEphemeral"}  # limited per channel instead


@dataclass
class RateLimits:
    """`scale` multiplies every allowance (10 = ten times Slack's); `enabled=False` turns limits off."""

    clock: Callable[[], float]
    enabled: bool = True
    scale: float = 1.0
    channel_per_second: float = 1.0
    channel_burst: int = 8
    _calls: defaultdict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def check(self, method: str, channel: str | None) -> float | None:
        """None when the call may go ahead (and is counted); else the seconds to wait (Retry-After)."""
        if not self.enabled:
            return None
        if method in SPECIAL:
            return self._channel_bucket(channel) if channel else None
        now = self.clock()
        tier = METHOD_TIERS.get(method, 3)
        allowed = max(1, int(TIERS[tier] * self.scale))
        calls = self._calls[f"method:{method}"]
        while calls and calls[0] <= now - 60.0:
            calls.popleft()
        if len(calls) >= allowed:
            return max(1.0, math.ceil(calls[0] + 60.0 - now))
        calls.append(now)
        return None

    def _channel_bucket(self, channel: str) -> float | None:
        """A token bucket per channel: `channel_per_second` refill, `channel_burst` deep (Slack's 1 msg/s + bursts)."""
        now = self.clock()
        rate = self.channel_per_second * self.scale
        capacity = max(1.0, self.channel_burst * self.scale)
        tokens, last = self._buckets.get(channel, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[channel] = (tokens, now)
            return max(1.0, math.ceil((1 - tokens) / rate))
        self._buckets[channel] = (tokens - 1, now)
        return None
