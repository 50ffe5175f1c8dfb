"""Who responds and who approves: the runbook's roles, approval policies, and severity levels."""

from __future__ import annotations

from pydantic import Field, model_validator

from bot.runbook._schema import Id, Strict


class Role(Strict):
    id: Id
    title: str
    response_minutes: float | None = Field(default=None, gt=0)
    responder: bool = False  # part of the immediate response team (paged when an incident opens)


class Policy(Strict):
    """Who must approve: any one of `any_of`, or one distinct person for each role in `all_of`."""

    any_of: list[Id] = []
    all_of: list[Id] = []

    @model_validator(mode="after")
    def _one_kind(self) -> Policy:
        if bool(self.any_of) == bool(self.all_of):
            raise ValueError("a policy names roles in exactly one of any_of / all_of")
        return self

    @property
    def roles(self) -> list[str]:
        return self.any_of or self.all_of


class Level(Strict):
    id: Id
    title: str
    description: str
    decision_minutes: float = Field(gt=0)
    approval: Policy
    page_roles: list[Id] = []  # responders invited and paged at this level (besides the approvers)
