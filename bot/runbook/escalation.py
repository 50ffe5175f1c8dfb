"""Who is called when nobody answers: the management ladder and the external contacts."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.runbook._schema import Id, Strict


class Rung(Strict):
    level: int = Field(ge=1)
    role: Id
    minutes: float = Field(gt=0)


class ExternalContact(Strict):
    service: str
    contact: str
    sla: str
    sla_minutes: float = Field(gt=0)
    escalation: str


class Escalation(Strict):
    management: list[Rung] = Field(min_length=1)
    external: list[ExternalContact] = []

    @field_validator("management")
    @classmethod
    def _ascending(cls, rungs: list[Rung]) -> list[Rung]:
        for a, b in zip(rungs, rungs[1:], strict=False):
            if b.minutes < a.minutes or b.level <= a.level:
                raise ValueError(f"rung {b.level} comes before rung {a.level} (levels and minutes must ascend)")
        return rungs
