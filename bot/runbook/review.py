"""After an incident: the follow-up checklists and the success metrics its report is judged by."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.runbook._schema import Id, Strict
from bot.runbook.triggers import Comparison


class ItemGroup(Strict):
    title: str
    items: list[str] = Field(min_length=1)


class FollowUp(Strict):
    id: Id
    title: str
    within_minutes: float = Field(gt=0)
    owner: Id
    groups: list[ItemGroup] = Field(min_length=1)


class SuccessMetric(Strict):
    id: Id
    label: str
    target: str
    measure: Literal["rollback_minutes", "data_loss", "users_affected_pct", "stakeholders_notified", "recovery_minutes"]
    op: Comparison | None = None
    threshold: float | None = None
