"""Approval policies, evaluated purely: who may vote, and whether the votes cast so far decide a request.

* any_of: one approval by someone holding any listed role.
* all_of: one approval per listed role, each by a DIFFERENT person. Filling the slots is a bipartite matching
  of roles to approvers, so a person holding two roles fills one slot only, and the declarer (or requester),
  being one person, can fill at most one slot of a policy with two or more roles.
* A decline by an authorized person (one holding any listed role) ends the vote.
* A ballot counts with the roles its voter held when the vote was cast (stored with the vote), never the
  roles they hold later.

No I/O here: the engine (bot/decision/approvals.py) locks the request, stores the ballot and asks `evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["any_of", "all_of"]
Status = Literal["pending", "approved", "declined"]


@dataclass(frozen=True)
class Policy:
    kind: Kind
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.kind not in ("any_of", "all_of"):
            raise ValueError(f"a policy is any_of or all_of, not {self.kind!r}")
        if not self.roles:
            raise ValueError("a policy names at least one role")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """From the stored form {"any_of": [...]} or {"all_of": [...]} (exactly one of them)."""
        kinds = [k for k in ("any_of", "all_of") if data.get(k)]
        if len(kinds) != 1:
            raise ValueError(f"a policy names roles in exactly one of any_of / all_of: {dict(data)!r}")
        kind: Kind = "any_of" if kinds[0] == "any_of" else "all_of"
        return cls(kind, tuple(dict.fromkeys(str(r) for r in data[kind])))

    @classmethod
    def from_model(cls, model: Any) -> Policy:
        """From the runbook's Policy model (bot/runbook/model.py)."""
        return cls.from_dict({"any_of": list(model.any_of), "all_of": list(model.all_of)})

    def to_dict(self) -> dict[str, list[str]]:
        return {self.kind: list(self.roles)}

    def held(self, roles: Iterable[str]) -> list[str]:
        """The roles of this policy among `roles`, in policy order."""
        have = set(roles)
        return [r for r in self.roles if r in have]

    def authorizes(self, roles: Iterable[str]) -> bool:
        return bool(self.held(roles))

    def words(self, title: Callable[[str], str] = str) -> str:
        """'Technical Lead + DevOps Lead' (all of) or 'Technical Lead OR DevOps Lead' (any of)."""
        joiner = " OR " if self.kind == "any_of" else " + "
        return joiner.join(title(r) for r in self.roles)


@dataclass(frozen=True)
class Ballot:
    user: str
    vote: Literal["approve", "decline"] | str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    status: Status
    slots: dict[str, str] = field(default_factory=dict)  # role -> the approver filling it (as far as it goes)
    missing: tuple[str, ...] = ()  # roles (policy order) no approver fills yet; () once satisfied
    satisfied: bool = False  # the approvals alone meet the policy (an action may still wait for its phrase)
    decliner: str | None = None


def match(roles: Sequence[str], approvers: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """A maximum assignment of roles to distinct people: {role: user}. Kuhn's augmenting paths, which are
    plenty for a handful of roles; users are tried in the order given (first voters first) for a stable answer."""
    can: dict[str, list[str]] = {r: [u for u, held in approvers.items() if r in set(held)] for r in roles}
    owner: dict[str, str] = {}  # user -> role

    def place(role: str, seen: set[str]) -> bool:
        for user in can[role]:
            if user in seen:
                continue
            seen.add(user)
            if user not in owner or place(owner[user], seen):
                owner[user] = role
                return True
        return False

    for role in roles:
        place(role, set())
    return {role: user for user, role in owner.items()}


def evaluate(policy: Policy, ballots: Sequence[Ballot], confirmed: bool = True) -> Outcome:
    """Decide from the ballots in the order cast. A decline by an authorized voter wins (it ends the vote);
    otherwise approved once the approvals meet the policy and, for an action that needs one, the typed
    confirmation is in (`confirmed`)."""
    for ballot in ballots:
        if ballot.vote == "decline" and policy.authorizes(ballot.roles):
            return Outcome("declined", decliner=ballot.user, missing=tuple(policy.roles))
    approvers: dict[str, list[str]] = {}
    for ballot in ballots:
        if ballot.vote == "approve" and ballot.user not in approvers:
            approvers[ballot.user] = policy.held(ballot.roles)
    if policy.kind == "any_of":
        first = next(((u, held[0]) for u, held in approvers.items() if held), None)
        slots = {first[1]: first[0]} if first else {}
        satisfied = first is not None
        missing: tuple[str, ...] = () if satisfied else tuple(policy.roles)
    else:
        slots = match(policy.roles, approvers)
        missing = tuple(r for r in policy.roles if r not in slots)
        satisfied = not missing
    status: Status = "approved" if satisfied and confirmed else "pending"
    return Outcome(status, slots=slots, missing=missing, satisfied=satisfied)
