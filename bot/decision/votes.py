"""Votes, and the one write that decides a request, with what follows a decision.

Each vote is a Vote row (unique per request and user) holding the roles its voter held at that moment. A vote is
cast under a lock of its request row (SELECT ... FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes
writers), so concurrent clicks see each other's votes and the request is decided once: a conditional UPDATE from
`pending`, and the incident's decision columns only while they are empty. Refusals and votes after the decision
change nothing but are audited on the timeline; a vote after the deadline counts (the deadline escalates, it never
locks) and is marked late. Policy evaluation itself is pure: bot/decision/policy.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import timeline, timers
from bot.core.clock import utc
from bot.core.errors import Refused
from bot.core.once import claim_once
from bot.core.room import Room
from bot.core.services import Services
from bot.decision.policy import Outcome, Policy
from bot.decision.rendering import Renderer
from bot.decision.requests import (
    DECIDED,
    DUE_TIMER,
    FOLLOW_UP_TIMER,
    ROLLBACK,
    Requests,
    VoteResult,
    cap,
    deciders,
    insert,
    lock,
)
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import clock_time, duration, escape
from bot.steps.checklists import Checklists
from bot.store.models import ApprovalRequest, Claim, Incident, Timer, Vote

log = logging.getLogger("bot.decision.approvals")  # the logger's name from before the split, which log filters know

FOLLOW_UP_GRACE = timedelta(seconds=60)  # longer than any follow-up takes: the timer only acts when one was lost


@dataclass(frozen=True)
class Decision:
    request_id: str
    status: str
    user: str


class Votes:
    def __init__(self, svc: Services, requests: Requests, renderer: Renderer, warroom: Room,
                 checklists: Checklists) -> None:
        self.svc = svc
        self.requests = requests
        self.renderer = renderer
        self.warroom = warroom
        self.checklists = checklists

    async def vote(self, request_id: str, user: str, choice: str, reason: str | None = None,
                   follow_up: bool = True) -> VoteResult:
        """Cast `user`'s approve/decline. Refused (audited, nothing stored) when they hold none of the policy's roles.
        With follow_up=False the caller runs `follow_up(result)` itself (a modal must be answered first)."""
        if choice not in ("approve", "decline"):
            raise Refused(f"Unknown vote {choice!r}.")
        request = await self.requests.get(request_id)
        await self.requests.require_open(request.incident_id)
        policy = Policy.from_dict(request.policy)
        held = await self.requests.check_voter(request, user, choice)
        what = await self.requests.what(request)
        now = self.svc.clock.now()
        decided = False
        async with self.svc.db.session() as session:
            row = await lock(session, request_id)
            assert row is not None
            if row.status in DECIDED:
                timeline.record(session, row.incident_id, now, "vote_ignored",
                                f"<@{user}> voted {choice} after {what} was {row.status}: nothing changed",
                                actor=user, request=request_id, vote=choice, why="decided")
                return VoteResult("closed", f"{cap(what)} is already {row.status}; your vote changed nothing "
                                  "(the attempt is on the timeline).", request_id, row.status)
            # A deadline is a promise to escalate, never a lock: a vote after it counts and is marked late.
            late_by = (now - utc(row.deadline_at)).total_seconds() if row.deadline_at is not None else 0.0
            if row.policy != request.policy:  # the level changed between the role check and the lock
                timeline.record(session, row.incident_id, now, "vote_ignored",
                                f"<@{user}> voted {choice} as the level changed: nothing changed", actor=user,
                                request=request_id, vote=choice, why="policy_changed")
                return VoteResult("closed", "The level changed as you clicked; read the updated message and vote "
                                  "again.", request_id, row.status)
            vote = {"request_id": request_id, "user_id": user, "vote": choice, "roles": held, "at": now,
                    "reason": reason}
            inserted = await session.exec(insert(session)(Vote).values(**vote).on_conflict_do_nothing(
                index_elements=["request_id", "user_id"]))  # type: ignore[call-overload]
            if not inserted.rowcount:
                return VoteResult("duplicate", "You have already voted on this; one vote per person.",
                                  request_id, row.status)
            roles = " & ".join(self.requests.title(r) for r in held)
            verb = "approved" if choice == "approve" else "declined"
            late = f" (late: {duration(late_by)} after the {clock_time(row.deadline_at)} deadline)" \
                if late_by > 0 else ""
            timeline.record(session, row.incident_id, now, "vote",
                            f"<@{user}> {verb} {what} as {roles}{late}" + (f": {escape(reason)}" if reason else ""),
                            actor=user, request=request_id, vote=choice, roles=held,
                            **({"late": True, "late_seconds": late_by} if late_by > 0 else {}))
            outcome = await self.requests.evaluate(session, row, policy)
            if outcome.status != "pending":
                decided = await self.decide(session, row, outcome, now, reason if choice == "decline" else None, what,
                                            user)
        counted = " It came after the deadline and still counts (marked late on the timeline)." if late else ""
        if decided:
            result = VoteResult("decided", f"{cap(what)} is {outcome.status}: your vote decided it.{counted}",
                                request_id, outcome.status)
        else:
            waiting = self._waiting(outcome)
            result = VoteResult("recorded", f"Your vote is recorded (as {roles}).{counted}" +
                                (f" Still needed: {waiting}." if waiting else ""), request_id, "pending")
        if follow_up:
            await self.follow_up(result, user)
        return result

    async def follow_up(self, result: VoteResult, user: str) -> None:
        """After the vote's transaction: announce a decision (once, by its winner) or re-render the message."""
        if result.kind == "decided":
            await self.after_decision(Decision(result.request_id, result.status, user))
        elif result.kind == "recorded":
            await self.renderer.render(result.request_id)

    def _waiting(self, outcome: Outcome) -> str:
        if outcome.missing:
            return ", ".join(self.requests.title(r) for r in outcome.missing)
        return "the typed confirmation phrase" if outcome.status == "pending" else ""

    async def decide(self, session: AsyncSession, row: ApprovalRequest, outcome: Outcome, now: datetime,
                     reason: str | None, what: str, user: str) -> bool:
        """The one conditional write that decides a request (and, for the rollback, the incident), with a durable
        safety net for what follows it. Opens no other session: the caller holds the request's lock."""
        result = await session.exec(update(ApprovalRequest).where(  # type: ignore[call-overload]
            ApprovalRequest.id == row.id, col(ApprovalRequest.status).in_(("pending", "expired"))).values(
            status=outcome.status, decided_at=now, reason=reason))
        if result.rowcount != 1:
            return False
        who = deciders(outcome)
        names = ", ".join(f"<@{u}>" + (f" ({self.requests.title(r)})" if r else "") for u, r in who)
        text = f"{cap(what)} {outcome.status} by {names}" + (f": {escape(reason)}" if reason else "")
        if row.subject == ROLLBACK:
            values: dict[str, Any] = {"decision": outcome.status, "decided_at": now,
                                      "stage": "rolling_back" if outcome.status == "approved" else "declined"}
            if outcome.status == "approved":
                values["rollback_started_at"] = now
                text += "; the rollback clock started"
            await session.exec(update(Incident).where(  # type: ignore[call-overload]
                Incident.id == row.incident_id, col(Incident.decision).is_(None)).values(**values))
            timeline.record(session, row.incident_id, now, "decided", text, actor=who[0][0] if who else None,
                            decision=outcome.status, request=row.id, deciders=[u for u, _ in who])
            await timers.cancel(session, row.incident_id, key_prefix=f"{row.incident_id}:{DUE_TIMER}:")
        else:
            timeline.record(session, row.incident_id, now, f"action_{outcome.status}", text,
                            actor=who[0][0] if who else None, request=row.id, subject=row.subject,
                            deciders=[u for u, _ in who])
        # The follow-up (events, the decision step, messages) runs right after the commit; should this process die
        # first, this timer runs it on whichever replica is alive.
        await timers.schedule(session, key=f"{row.incident_id}:{FOLLOW_UP_TIMER}:{row.id}", kind=FOLLOW_UP_TIMER,
                              due_at=now + FOLLOW_UP_GRACE, incident_id=row.incident_id,
                              payload={"request": row.id, "status": outcome.status, "user": user})
        return True

    async def after_decision(self, decision: Decision) -> None:
        """Render, announce, complete the decision step, emit the event; then mark it done for the safety-net timer."""
        request = await self.requests.get(decision.request_id)
        incident_id = request.incident_id
        change = f"{request.id}:{decision.status}:{request.decided_at}"  # a re-opened vote decides anew
        await self.renderer.render(request.id)
        if request.subject != ROLLBACK:
            execution_id = request.subject.split(":", 1)[1]
            event = "action_approved" if decision.status == "approved" else "action_declined"
            await self.svc.events.emit(event, change=change, incident_id=incident_id, execution_id=execution_id)
        else:
            await self.renderer.announce_decision(request)
            rendered = False
            if decision.status == "approved":
                incident = await self.svc.incident(incident_id)
                step = procedure_for(self.svc.runbook, incident.scenario_id).decision_step()
                if step is not None:
                    # Completing the step re-renders the header, the decision already stored: once is enough.
                    await self.checklists.complete_step(incident_id, step.id, decision.user, "done",
                                                        "rollback approved", authorize=False)
                    rendered = True
            await self.svc.events.emit("decided", change=change, incident_id=incident_id,
                                       decision=decision.status)
            if not rendered:
                await self.warroom.refresh(incident_id)
        async with self.svc.db.session() as session:
            await claim_once(session, f"{request.id}:follow_up_done", self.svc.settings.replica_id,
                             self.svc.clock.now())

    async def on_follow_up(self, timer: Timer) -> None:
        """The safety net: a decision whose follow-up never finished (its process died) gets it now."""
        request_id = str(timer.payload.get("request"))
        async with self.svc.db.session() as session:
            if await session.get(Claim, f"{request_id}:follow_up_done") is not None:
                return
        log.warning("approval %s: finishing the follow-up of its decision", request_id)
        await self.after_decision(Decision(request_id, str(timer.payload["status"]), str(timer.payload["user"])))
