"""The rollback request's level and deadline: opened with the incident under its level's policy, overdue at its
deadline (which escalates, never locks), and recomputed when the level changes or the vote is re-opened.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import authz, timeline, timers
from bot.core.clock import utc
from bot.core.errors import Refused
from bot.core.once import claim_once
from bot.core.room import Room
from bot.core.services import Services
from bot.decision.policy import Policy
from bot.decision.rendering import Renderer
from bot.decision.requests import DECIDED, DUE_TIMER, ROLLBACK, Requests, lock
from bot.decision.votes import Decision, Votes
from bot.slack.blocks import clock_time, mentions
from bot.store.models import ApprovalRequest, Incident, Timer


class Levels:
    def __init__(self, svc: Services, requests: Requests, votes: Votes, renderer: Renderer, warroom: Room) -> None:
        self.svc = svc
        self.requests = requests
        self.votes = votes
        self.renderer = renderer
        self.warroom = warroom

    # --- the rollback request: opened with the incident ---------------------------------------------------

    async def open_rollback_request(self, session: AsyncSession, incident: Incident) -> None:
        """Runs in the transaction that declares the incident: the request, its deadline timer, the timeline."""
        level = self.svc.runbook.level(incident.level)
        policy = Policy.from_model(level.approval)
        deadline = incident.declared_at + timedelta(minutes=level.decision_minutes)
        request = ApprovalRequest(id=f"apr-{secrets.token_hex(6)}", incident_id=incident.id, subject=ROLLBACK,
                                  policy=policy.to_dict(), requested_by=incident.declared_by,
                                  requested_at=incident.declared_at, deadline_at=deadline)
        session.add(request)
        await self._schedule_due(session, request, deadline, "initial")
        timeline.record(session, incident.id, incident.declared_at, "approval_requested",
                        f"Rollback decision needed: {policy.words(self.requests.title)} by {clock_time(deadline)}",
                        request=request.id, level=level.id)

    async def _schedule_due(self, session: AsyncSession, request: ApprovalRequest, deadline: datetime,
                            tag: str) -> None:
        await timers.schedule(session, key=f"{request.incident_id}:{DUE_TIMER}:{request.id}:{tag}", kind=DUE_TIMER,
                              due_at=deadline, incident_id=request.incident_id,
                              payload={"request": request.id, "deadline": deadline.isoformat()})

    async def on_war_room_ready(self, incident_id: str, **_: Any) -> None:
        request = await self.requests.rollback_request(incident_id)
        if request is not None:
            await self.renderer.render(request.id)

    # --- the deadline ----------------------------------------------------------------------------------------

    async def on_decision_due(self, timer: Timer) -> None:
        """Still undecided at the deadline: the decision message turns overdue (its buttons stay live: a vote now
        still counts), the war room hears it in one message edited in place, and `decision_overdue` pulls the
        management ladder forward and pages the approvers' secondaries. Once per deadline."""
        now = self.svc.clock.now()
        title = self.requests.title
        request_id, deadline = timer.payload.get("request"), timer.payload.get("deadline")
        async with self.svc.db.session() as session:
            row = await lock(session, str(request_id))
            if row is None or row.status not in ("pending", "expired") or row.deadline_at is None \
                    or utc(row.deadline_at).isoformat() != deadline:
                return  # decided, or the level changed and a newer timer owns the new deadline
            incident = await session.get(Incident, row.incident_id)
            if incident is None or incident.status != "open":
                return
            if not await claim_once(session, f"{row.id}:overdue:{deadline}", self.svc.settings.replica_id, now):
                return
            level = self.svc.runbook.level(incident.level)
            policy = Policy.from_dict(row.policy)
            timeline.record(session, row.incident_id, now, "decision_overdue",
                            f"Rollback decision overdue: {level.title} needs {policy.words(title)} within "
                            f"{level.decision_minutes:g} min (due {clock_time(row.deadline_at)})", request=row.id)
            overdue = await self.svc.events.emit("decision_overdue", session, change=f"{row.id}:{deadline}",
                                                 incident_id=row.incident_id)
        held = await self.svc.roles.holders(list(policy.roles), row.incident_id)
        people = [u for r in policy.roles for u in held.get(r, [])]
        if incident.channel_id:
            text = (f":warning: *The rollback decision is overdue* — it was due at {clock_time(row.deadline_at)} "
                    f"({level.title}: {level.decision_minutes:g} min). Needs: {policy.words(title)}.\n"
                    f"{mentions(people)}: Approve or Decline on the decision message still counts — decide now. "
                    "Management escalation is brought forward and the secondaries are paged.")
            # One overdue notice per incident, edited in place when a later deadline passes too.
            await self.svc.slack.put_message(row.incident_id, "decision_overdue", incident.channel_id, text)
        await self.renderer.render(row.id)
        # Its reactions (the ladder brought forward, the secondaries paged, the comms) are outbox rows written
        # with the overdue mark: worked now beside the incident's next timers, not before them (their DMs wait
        # for each person's DM channel, a message a second).
        self.svc.background(self.svc.events.deliver(overdue))

    # --- level changes and re-opening ---------------------------------------------------------------------------

    async def change_level(self, incident_id: str, level_id: str | None, user: str) -> str:
        """Set the incident's level (None: re-open the vote at the current level after its deadline passed): the
        policy and deadline are recomputed from now, votes cast in time count again under the new policy."""
        title = self.requests.title
        request = await self.requests.rollback_request(incident_id)
        if request is None:
            raise Refused("This incident has no rollback decision.")
        incident = await self.requests.require_open(incident_id)
        if request.status in DECIDED:
            raise Refused(f"The rollback was already {request.status}; the level can no longer change it.")
        target = level_id or incident.level
        try:
            level = self.svc.runbook.level(target)
        except KeyError:
            raise Refused("That level is not in this runbook.") from None
        interaction = "decision_level" if level_id else "decision_reopen"
        await authz.require(self.svc, interaction, user, self.requests.subject(request), acting=False)  # maybe a no-op
        now = self.svc.clock.now()
        policy = Policy.from_model(level.approval)
        deadline = now + timedelta(minutes=level.decision_minutes)
        decided = False
        async with self.svc.db.session() as session:
            row = await lock(session, request.id)
            assert row is not None
            inc = await session.get(Incident, incident_id)
            assert inc is not None
            if row.status in DECIDED:
                raise Refused(f"The rollback was already {row.status}.")
            if target == inc.level and row.status == "pending":
                raise Refused(f"The level is already {level.title} and the vote is open.")
            old = self.svc.runbook.level(inc.level)
            await session.exec(update(ApprovalRequest).where(  # type: ignore[call-overload]
                ApprovalRequest.id == row.id, col(ApprovalRequest.status).in_(("pending", "expired"))).values(
                policy=policy.to_dict(), deadline_at=deadline, status="pending"))
            await session.exec(update(Incident).where(  # type: ignore[call-overload]
                Incident.id == incident_id, col(Incident.decision).is_(None)).values(level=level.id))
            await timers.cancel(session, incident_id, key_prefix=f"{incident_id}:{DUE_TIMER}:")
            change = secrets.token_hex(4)
            await self._schedule_due(session, row, deadline, change)
            verb = f"changed the level from {old.title} to {level.title}" if target != inc.level \
                else f"re-opened the {level.title} vote"
            timeline.record(session, incident_id, now, "level_changed",
                            f"<@{user}> {verb}: needs {policy.words(title)} by {clock_time(deadline)}",
                            actor=user, level=level.id, previous=old.id, request=row.id)
            outcome = await self.requests.evaluate(session, row, policy)  # the votes cast in time, under the new policy
            if outcome.status != "pending":
                decided = await self.votes.decide(session, row, outcome, now, None, "the rollback", user)
        await authz.acted(self.svc, incident_id, user, interaction)  # it changed something: they are on it
        held = await self.svc.roles.holders(list(policy.roles), incident_id)
        people = [u for r in policy.roles for u in held.get(r, [])]
        if incident.channel_id:
            await self.svc.slack.reply(incident.channel_id, None,
                                       f":arrows_counterclockwise: <@{user}> {verb}. Needs: {policy.words(title)}"
                                       f" by {clock_time(deadline)} — {mentions(people)}",
                                       owed=(incident_id, f"reply:level:{row.id}:{change}"))
        if decided:
            await self.votes.after_decision(Decision(request.id, outcome.status, user))
        else:
            await self.renderer.render(request.id)
            await self.warroom.refresh(incident_id)
        return f"{verb[0].upper()}{verb[1:]}: decide by {clock_time(deadline)}."
