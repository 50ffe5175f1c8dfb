"""Approval requests as every part of the decision reads them: the row, its lock, its votes, the action it gates,
its typed confirmation, who may vote on it, and its ballot evaluated under its policy (bot/decision/policy.py).

Reads only: the writes (votes, levels, overrides, confirmations, action requests) live in the modules beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import authz
from bot.core.errors import Refused
from bot.core.services import Services
from bot.decision.policy import Ballot, Outcome, Policy, evaluate
from bot.runbook.model import Action
from bot.store.models import ApprovalRequest, ConfirmationChallenge, Execution, Incident, Vote

ROLLBACK = "rollback"
DECISION_KEY = "decision"
# Timer kinds: stored in timer rows, so never renamed.
DUE_TIMER = "decision_due"
FOLLOW_UP_TIMER = "approval_follow_up"
DECIDED = ("approved", "declined")


@dataclass(frozen=True)
class VoteResult:
    kind: str  # recorded | decided | duplicate | closed
    message: str  # for the voter, as an ephemeral
    request_id: str
    status: str  # the request's status after this vote


def message_key(request: ApprovalRequest) -> str:
    """The keyed Slack message of a request: the war room's decision message, or one per action approval."""
    return DECISION_KEY if request.subject == ROLLBACK else f"approval:{request.subject}"


def insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, for its ON CONFLICT DO NOTHING."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def lock(session: AsyncSession, request_id: str) -> ApprovalRequest | None:
    return (await session.exec(select(ApprovalRequest).where(
        ApprovalRequest.id == request_id).with_for_update())).first()


async def votes_of(session: AsyncSession, request_id: str) -> list[Vote]:
    return list((await session.exec(select(Vote).where(Vote.request_id == request_id).order_by(
        col(Vote.at), col(Vote.id)))).all())


async def confirmed_by(session: AsyncSession, request: ApprovalRequest) -> ConfirmationChallenge | None:
    return (await session.exec(select(ConfirmationChallenge).where(
        ConfirmationChallenge.incident_id == request.incident_id, ConfirmationChallenge.subject == request.subject,
        col(ConfirmationChallenge.used_at).is_not(None)).order_by(col(ConfirmationChallenge.used_at)))).first()


def deciders(outcome: Outcome) -> list[tuple[str, str | None]]:
    """Who decided, each with the role their vote filled (None for a decliner)."""
    if outcome.status == "declined":
        return [(outcome.decliner, None)] if outcome.decliner else []
    seen: dict[str, str] = {}
    for role, user in outcome.slots.items():
        seen.setdefault(user, role)
    return list(seen.items())


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def known(runbook: Any, role: str) -> bool:
    return any(r.id == role for r in runbook.roles)


class Requests:
    """The reads, each in its own session unless it takes the caller's."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def get(self, request_id: str) -> ApprovalRequest:
        async with self.svc.db.session() as session:
            request = await session.get(ApprovalRequest, request_id)
        if request is None:
            raise Refused("No such approval request.")
        return request

    async def rollback_request(self, incident_id: str) -> ApprovalRequest | None:
        async with self.svc.db.session() as session:
            return (await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.incident_id == incident_id, ApprovalRequest.subject == ROLLBACK))).first()

    async def votes(self, request_id: str) -> list[Vote]:
        async with self.svc.db.session() as session:
            return await votes_of(session, request_id)

    async def pending(self, incident_id: str) -> list[ApprovalRequest]:
        async with self.svc.db.session() as session:
            return list((await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.incident_id == incident_id,
                col(ApprovalRequest.status).in_(("pending", "expired"))))).all())

    def title(self, role: str) -> str:
        return self.svc.runbook.role(role).title

    async def check_voter(self, request: ApprovalRequest, user: str, choice: str, acting: bool = True) -> list[str]:
        """The policy's roles `user` holds now (resolved at click time, by user ID). None: the attempt is audited
        on the timeline, nothing else is stored, and Refused says which roles can vote and who holds them."""
        kind = "decision" if request.subject == ROLLBACK else "action"
        return await authz.require(self.svc, f"{kind}_{choice}", user, self.subject(request), acting=acting)

    @staticmethod
    def subject(request: ApprovalRequest) -> authz.Subject:
        return authz.Subject(request.incident_id, policy_roles=tuple(Policy.from_dict(request.policy).roles),
                             requester=request.requested_by)

    async def require_open(self, incident_id: str) -> Incident:
        incident = await self.svc.incident(incident_id)
        if incident.status != "open":
            raise Refused(f"The incident is {incident.status}.")
        return incident

    async def what(self, request: ApprovalRequest) -> str:
        """What the request decides, in words: "the rollback" or the action's title."""
        if request.subject == ROLLBACK:
            return "the rollback"
        async with self.svc.db.session() as session:
            _execution, action = await self.action_of(session, request)
        return action.title if action else request.subject

    async def action_of(self, session: AsyncSession,
                        request: ApprovalRequest) -> tuple[Execution | None, Action | None]:
        if not request.subject.startswith("execution:"):
            return None, None
        execution = await session.get(Execution, request.subject.split(":", 1)[1])
        if execution is None:
            return None, None
        try:
            return execution, self.svc.runbook.action(execution.action_id)
        except KeyError:
            return execution, None

    async def evaluate(self, session: AsyncSession, row: ApprovalRequest, policy: Policy) -> Outcome:
        ballots = [Ballot(v.user_id, v.vote, frozenset(v.roles)) for v in await votes_of(session, row.id)]
        confirmed = True
        if row.subject != ROLLBACK:
            _execution, action = await self.action_of(session, row)
            if action is not None and action.confirmation is not None:
                confirmed = await confirmed_by(session, row) is not None
        return evaluate(policy, ballots, confirmed)
