"""Wall-clock times for people: in the audience's time zone (the runbook's `comms.timezone`), with UTC beside it."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def time_of(at: datetime, zone: str, seconds: bool = False) -> str:
    """'14:02 EST (19:02 UTC)', or '19:02 UTC' when the audience is on UTC."""
    utc = _utc(at)
    form = "%H:%M:%S" if seconds else "%H:%M"
    if zone == "UTC":
        return f"{utc.strftime(form)} UTC"
    local = utc.astimezone(ZoneInfo(zone))
    return f"{local.strftime(form)} {local.tzname()} ({utc.strftime(form)} UTC)"


def date_time_of(at: datetime, zone: str) -> str:
    """'1 December 2026, 14:02 EST (19:02 UTC)': the date as the audience's calendar has it."""
    local = _utc(at).astimezone(ZoneInfo(zone))
    return f"{local.day} {local:%B %Y}, {time_of(at, zone)}"
