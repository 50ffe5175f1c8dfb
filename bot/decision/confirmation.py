"""Typed confirmation of a destructive action: a single-use, five-minute challenge per user, whose phrase (the
runbook's, filled from the execution's values) is stored only as a digest and checked on the server. The modal is
bot/decision/confirm_view.py.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from bot.core import authz, timeline
from bot.core.errors import Refused
from bot.core.services import Services
from bot.decision.policy import Policy
from bot.decision.requests import Requests, VoteResult, confirmed_by
from bot.decision.votes import Votes
from bot.slack.blocks import clock_time
from bot.store.models import ApprovalRequest, ConfirmationChallenge

CONFIRM_SECONDS = 300  # a typed-confirmation challenge lives five minutes and is used once
_PARAM = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class Challenge:
    id: str
    action_title: str
    prompt: str
    phrase: str
    expires_at: datetime


def phrase_digest(phrase: str) -> str:
    return hashlib.sha256(phrase.strip().encode()).hexdigest()


def fill_phrase(template: str, values: dict[str, Any]) -> str:
    """The runbook's phrase with `{param}` filled from the execution's (non-secret) values."""
    return _PARAM.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


class Confirmations:
    def __init__(self, svc: Services, requests: Requests, votes: Votes) -> None:
        self.svc = svc
        self.requests = requests
        self.votes = votes

    async def open_confirmation(self, request_id: str, user: str) -> Challenge:
        """A single-use, five-minute challenge for `user` to type the action's phrase (the requester or an approver)."""
        request = await self.requests.get(request_id)
        await self.requests.require_open(request.incident_id)
        async with self.svc.db.session() as session:
            execution, action = await self.requests.action_of(session, request)
        if execution is None or action is None or action.confirmation is None:
            raise Refused("This approval needs no typed confirmation.")
        if request.status != "pending":
            raise Refused(f"This approval is already {request.status}.")
        await authz.require(self.svc, "action_confirm", user, self.requests.subject(request))
        phrase = fill_phrase(action.confirmation.phrase, {**execution.params, **execution.data.get("values", {})})
        now = self.svc.clock.now()
        challenge = ConfirmationChallenge(id=f"cc-{secrets.token_hex(8)}", incident_id=request.incident_id,
                                          subject=request.subject, user_id=user, phrase_sha256=phrase_digest(phrase),
                                          expires_at=now + timedelta(seconds=CONFIRM_SECONDS))
        async with self.svc.db.session() as session:
            if await confirmed_by(session, request) is not None:
                raise Refused("The confirmation phrase was already typed for this approval.")
            session.add(challenge)
            timeline.record(session, request.incident_id, now, "confirmation_opened",
                            f"<@{user}> opened the confirmation for {action.title}", actor=user, request=request_id,
                            challenge=challenge.id)
        return Challenge(challenge.id, action.title, action.confirmation.prompt, phrase, challenge.expires_at)

    async def confirm(self, challenge_id: str, user: str, typed: str, follow_up: bool = True) -> VoteResult:
        """Check a typed phrase on the server: the challenge must be this user's, unexpired, unused and match.
        Refused (audited) otherwise. Decides the request when the policy's votes are already in."""
        now = self.svc.clock.now()
        problem: str | None = None
        decided = False
        async with self.svc.db.session() as session:
            challenge = await session.get(ConfirmationChallenge, challenge_id)
            request = (await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.incident_id == challenge.incident_id,
                ApprovalRequest.subject == challenge.subject))).first() if challenge else None
        if challenge is None or request is None:
            raise Refused("That confirmation is not yours; open a new one from the approval message.")
        if challenge.user_id != user:  # someone else's form: refused, audited, naming who can
            await authz.refuse(self.svc, "view:action_confirm_phrase", user, self.requests.subject(request),
                               "That confirmation was opened by someone else.")
        async with self.svc.db.session() as session:
            row = (await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.incident_id == challenge.incident_id,
                ApprovalRequest.subject == challenge.subject).with_for_update())).first()
            if row is None:
                raise Refused("No such approval request.")
            if row.status != "pending":
                problem = f"This approval is already {row.status}."
            elif challenge.used_at is not None:
                problem = "That confirmation was already used; open a new one."
            elif now > challenge.expires_at:
                problem = f"That confirmation expired at {clock_time(challenge.expires_at)}; open a new one."
            elif not hmac.compare_digest(phrase_digest(typed), challenge.phrase_sha256):
                problem = "That is not the confirmation phrase."
            else:
                used = await session.exec(update(ConfirmationChallenge).where(  # type: ignore[call-overload]
                    ConfirmationChallenge.id == challenge_id, col(ConfirmationChallenge.used_at).is_(None)).values(
                    used_at=now))
                if used.rowcount != 1:
                    problem = "That confirmation was already used; open a new one."
            if problem:
                timeline.record(session, row.incident_id, now, "confirmation_refused",
                                f"Confirmation by <@{user}> refused: {problem}", actor=user, request=row.id,
                                challenge=challenge_id)
            else:
                timeline.record(session, row.incident_id, now, "confirmation_typed",
                                f"<@{user}> typed the confirmation phrase", actor=user, request=row.id,
                                challenge=challenge_id)
                _execution, action = await self.requests.action_of(session, row)
                outcome = await self.requests.evaluate(session, row, Policy.from_dict(row.policy))
                if outcome.status != "pending":
                    what = action.title if action else row.subject
                    decided = await self.votes.decide(session, row, outcome, now, None, what, user)
        if problem:
            raise Refused(problem)
        if decided:
            result = VoteResult("decided", f"Confirmed: the action is {outcome.status}.", row.id, outcome.status)
        else:
            waiting = ", ".join(self.requests.title(r) for r in outcome.missing)
            result = VoteResult("recorded", "Confirmed." + (f" Still needed: {waiting}." if waiting else ""),
                                row.id, "pending")
        if follow_up:
            await self.votes.follow_up(result, user)
        return result
