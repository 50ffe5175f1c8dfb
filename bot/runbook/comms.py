"""What the incident tells people: the comms templates, the moments they are drafted at, and how they speak."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.runbook._schema import Id, Strict


class Audience(StrEnum):
    customers = "customers"
    status_page = "status_page"
    internal = "internal"
    support = "support"
    executives = "executives"


class Moment(StrEnum):
    """When the engine drafts a message (the seed's moments)."""

    declared = "declared"
    decided = "decided"  # the rollback was approved: the cause is identified, the fix under way
    traffic_diverted = "traffic_diverted"
    rollback_completed = "rollback_completed"
    resolved = "resolved"


class CommsTemplate(Strict):
    id: Id
    title: str
    audience: Audience
    when: Moment
    approver: Id
    subject: str = ""
    body: str  # Jinja2 (sandboxed), filled from the incident
    # For the status page: the Statuspage incident status this update sets (the first creates the page incident).
    statuspage_status: Literal["investigating", "identified", "monitoring", "resolved"] | None = None
    # The update promises the next one within this many minutes: the approver is reminded when it is due.
    next_update_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _status_page_only(self) -> CommsTemplate:
        if self.statuspage_status and self.audience != Audience.status_page:
            raise ValueError("statuspage_status is for status_page templates only")
        return self


class CommsSettings(Strict):
    """How the comms speak: the service's name and the audience's time zone (times are shown in it, with UTC)."""

    service: str = ""
    timezone: str = "UTC"
    status_page_url: str = ""  # the public status page people read: bookmarked in every incident channel

    @field_validator("status_page_url")
    @classmethod
    def _page_url(cls, value: str) -> str:
        if value and (not value.startswith(("http://", "https://")) or any(c in value for c in "<>| ")):
            raise ValueError("an http(s) address without spaces or <>|")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)") from exc
        return value
