"""Small formatting helpers shared by the Block Kit views (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

DRILL_TAG = "[DRILL] "


def minutes(value: float) -> str:
    """0.5 -> '30s', 2 -> '2m', 2.5 -> '2m30s'."""
    seconds = round(value * 60)
    if seconds < 60:
        return f"{seconds}s"
    m, s = divmod(seconds, 60)
    return f"{m}m{s:02d}s" if s else f"{m}m"


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h{m:02d}m"
    return f"{m}m{s:02d}s" if m else f"{s}s"


def window(start: float, end: float) -> str:
    return f"{start:g}–{end:g} min"


def mentions(users: Iterable[str]) -> str:
    users = sorted(set(users))
    return ", ".join(f"<@{u}>" for u in users) if users else "_nobody on the roster_"


def clock_time(when: datetime) -> str:
    return when.strftime("%H:%M:%S UTC")


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def drill_prefix(is_drill: bool) -> str:
    return DRILL_TAG if is_drill else ""
