"""The roster: who holds each runbook role, kept apart from the procedure so people change without a runbook
review. Contacts are Slack user IDs, Slack user-group IDs (resolved to members at use) or emails (looked up).

    roles:
      technical_lead:
        primary: [{user: U100TL01}]
        secondary: [{user: U100TL02}]
      database_admin:
        primary: [{usergroup: S300DBA}]
    drill_participants: [{user: U100TL01}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import ErrorDetails

from bot.runbook.loader import RunbookError, format_problem, parse_yaml
from bot.runbook.model import Runbook

DEFAULT_ROSTER = Path(__file__).resolve().parents[2] / "runbooks" / "roster.example.yml"

Tier = Literal["primary", "secondary"]


class RosterError(Exception):
    """The roster was refused; `problems` holds one `FILE: path: what is wrong` line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    """Exactly one of a Slack user ID, a Slack user-group ID or an email address."""

    user: str | None = Field(default=None, pattern=r"^[UW][A-Z0-9]{2,}$")
    usergroup: str | None = Field(default=None, pattern=r"^S[A-Z0-9]{2,}$")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @model_validator(mode="after")
    def _exactly_one(self) -> Contact:
        given = [k for k in ("user", "usergroup", "email") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a contact is exactly one of user / usergroup / email (got {', '.join(given) or 'none'})")
        return self

    def __str__(self) -> str:
        if self.user:
            return f"<@{self.user}>"
        if self.usergroup:
            return f"<!subteam^{self.usergroup}>"
        return str(self.email)


class RoleContacts(_Strict):
    primary: list[Contact] = []
    secondary: list[Contact] = []


class Roster(_Strict):
    roles: dict[str, RoleContacts] = {}
    drill_participants: list[Contact] = []
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        """Roles of the runbook nobody holds (allowed, so a half-filled roster still starts, but worth saying)."""
        return list(self._warnings)

    def contacts(self, role: str, tier: Tier | str = "primary") -> list[Contact]:
        if tier not in ("primary", "secondary"):
            raise ValueError(f"tier is primary or secondary, not {tier!r}")
        held = self.roles.get(role)
        return list(getattr(held, tier)) if held else []

    def all_contacts(self, role: str) -> list[Contact]:
        return [*self.contacts(role, "primary"), *self.contacts(role, "secondary")]


def load_roster(path: str | Path, runbook: Runbook) -> Roster:
    path = Path(path)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError([f"{shown}: cannot read the file: {exc}"]) from exc
    try:
        data, root = parse_yaml(text, shown)
    except RunbookError as exc:
        raise RosterError(exc.problems) from None
    try:
        roster = Roster.model_validate(data)
    except ValidationError as exc:
        raise RosterError([format_problem(shown, root, e["loc"], _message(e))
                           for e in exc.errors(include_url=False)]) from None
    known = {r.id for r in runbook.roles}
    unknown = [r for r in roster.roles if r not in known]
    if unknown:
        raise RosterError([format_problem(shown, root, ("roles", r), f"unknown role {r!r}: the runbook "
                                          f"{runbook.name} defines {', '.join(sorted(known))}") for r in unknown])
    roster._warnings = [f"{shown}: roles.{r.id}: nobody holds the role {r.title}" for r in runbook.roles
                        if not roster.all_contacts(r.id)]
    return roster


def _message(error: ErrorDetails) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    return str(error["msg"]).removeprefix("Value error, ")
