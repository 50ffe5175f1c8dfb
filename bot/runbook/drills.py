"""Rehearsals of the procedure: scheduled drills and what each checks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bot.runbook._schema import Id, Strict


class Drill(Strict):
    id: Id
    title: str
    schedule: str
    cron: str  # five fields, e.g. "0 10 1 */3 *"
    duration_minutes: float = Field(gt=0)
    environment: str
    kind: Literal["full", "partial"]
    checklist_title: str
    items: list[str] = Field(min_length=1)
    scenario: Id | None = None
    participants: list[Id] = []  # roles taking part; management DMs in a drill go only to them

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from exc
        return value
