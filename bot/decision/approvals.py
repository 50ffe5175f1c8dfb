"""Approvals bound to roles: the rollback decision, and the approval a destructive action needs before it runs.

Each request is an ApprovalRequest row holding its policy; each vote a Vote row (unique per request and user)
holding the roles its voter held at that moment. A vote is cast under a lock of its request row (SELECT ... FOR
UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serializes writers), so concurrent clicks see each other's
votes and the request is decided once: a conditional UPDATE from `pending`, and the incident's decision
columns only while they are empty. Refusals and votes after the decision change nothing but are audited on the
timeline; a vote after the deadline counts (the deadline escalates, it never locks) and is marked late.
Policy evaluation itself is pure: bot/decision/policy.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import authz, timeline, timers
from bot.core.clock import utc
from bot.core.decider_dm import tell_deciders
from bot.core.errors import Refused
from bot.core.once import claim_once
from bot.core.room import Room
from bot.core.services import Services
from bot.decision.policy import Ballot, Outcome, Policy, evaluate
from bot.decision.views import ApprovalView, LevelChoice, RoleLine, VoteLine, approval_blocks, approval_text
from bot.runbook.model import Action
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import clock_time, duration, escape, mentions, param_label
from bot.steps.checklists import Checklists
from bot.store.models import (
    ApprovalRequest,
    Claim,
    ConfirmationChallenge,
    Execution,
    Incident,
    RoleOverride,
    Timer,
    Vote,
)

log = logging.getLogger(__name__)

ROLLBACK = "rollback"
DECISION_KEY = "decision"
DUE_TIMER = "decision_due"
FOLLOW_UP_TIMER = "approval_follow_up"
FOLLOW_UP_GRACE = timedelta(seconds=60)  # longer than any follow-up takes: the timer only acts when one was lost
CONFIRM_SECONDS = 300  # a typed-confirmation challenge lives five minutes and is used once
DECIDED = ("approved", "declined")
_PARAM = re.compile(r"\{([a-z][a-z0-9_]*)\}")


@dataclass(frozen=True)
class VoteResult:
    kind: str  # recorded | decided | duplicate | closed
    message: str  # for the voter, as an ephemeral
    request_id: str
    status: str  # the request's status after this vote


@dataclass(frozen=True)
class Challenge:
    id: str
    action_title: str
    prompt: str
    phrase: str
    expires_at: datetime


@dataclass(frozen=True)
class _Decision:
    request_id: str
    status: str
    user: str


def message_key(request: ApprovalRequest) -> str:
    """The keyed Slack message of a request: the war room's decision message, or one per action approval."""
    return DECISION_KEY if request.subject == ROLLBACK else f"approval:{request.subject}"


def phrase_digest(phrase: str) -> str:
    return hashlib.sha256(phrase.strip().encode()).hexdigest()


def fill_phrase(template: str, values: dict[str, Any]) -> str:
    """The runbook's phrase with `{param}` filled from the execution's (non-secret) values."""
    return _PARAM.sub(lambda m: str(values.get(m.group(1), m.group(0))), template)


def _insert(session: AsyncSession) -> Any:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class Approvals:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self._rendering: set[str] = set()
        self._dirty: set[str] = set()
        svc.on_declare.append(self._open_rollback_request)
        svc.events.on("war_room_ready", self._on_war_room_ready, name="approvals.on_war_room_ready")
        svc.events.on("approval_needed", self._on_approval_needed, name="approvals.request_action")
        svc.timers.on(DUE_TIMER, self.on_decision_due)
        svc.timers.on(FOLLOW_UP_TIMER, self.on_follow_up)

    # --- reading ---------------------------------------------------------------------------------------

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
            return await self._votes(session, request_id)

    def title(self, role: str) -> str:
        return self.svc.runbook.role(role).title

    async def check_voter(self, request: ApprovalRequest, user: str, choice: str, acting: bool = True) -> list[str]:
        """The policy's roles `user` holds now (resolved at click time, by user ID). None: the attempt is audited
        on the timeline, nothing else is stored, and Refused says which roles can vote and who holds them."""
        kind = "decision" if request.subject == ROLLBACK else "action"
        return await authz.require(self.svc, f"{kind}_{choice}", user, self._subject(request), acting=acting)

    @staticmethod
    def _subject(request: ApprovalRequest) -> authz.Subject:
        return authz.Subject(request.incident_id, policy_roles=tuple(Policy.from_dict(request.policy).roles),
                             requester=request.requested_by)

    # --- the rollback request: opened with the incident ---------------------------------------------------

    async def _open_rollback_request(self, session: AsyncSession, incident: Incident) -> None:
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
                        f"Rollback decision needed: {policy.words(self.title)} by {clock_time(deadline)}",
                        request=request.id, level=level.id)

    async def _schedule_due(self, session: AsyncSession, request: ApprovalRequest, deadline: datetime,
                            tag: str) -> None:
        await timers.schedule(session, key=f"{request.incident_id}:{DUE_TIMER}:{request.id}:{tag}", kind=DUE_TIMER,
                              due_at=deadline, incident_id=request.incident_id,
                              payload={"request": request.id, "deadline": deadline.isoformat()})

    async def _on_war_room_ready(self, incident_id: str, **_: Any) -> None:
        request = await self.rollback_request(incident_id)
        if request is not None:
            await self.render(request.id)

    # --- votes ---------------------------------------------------------------------------------------------

    async def vote(self, request_id: str, user: str, choice: str, reason: str | None = None,
                   follow_up: bool = True) -> VoteResult:
        """Cast `user`'s approve/decline. Refused (audited, nothing stored) when they hold none of the policy's roles.
        With follow_up=False the caller runs `follow_up(result)` itself (a modal must be answered first)."""
        if choice not in ("approve", "decline"):
            raise Refused(f"Unknown vote {choice!r}.")
        request = await self.get(request_id)
        await self._require_open(request.incident_id)
        policy = Policy.from_dict(request.policy)
        held = await self.check_voter(request, user, choice)
        what = await self._what(request)
        now = self.svc.clock.now()
        decided = False
        async with self.svc.db.session() as session:
            row = await self._lock(session, request_id)
            assert row is not None
            if row.status in DECIDED:
                timeline.record(session, row.incident_id, now, "vote_ignored",
                                f"<@{user}> voted {choice} after {what} was {row.status}: nothing changed",
                                actor=user, request=request_id, vote=choice, why="decided")
                return VoteResult("closed", f"{_cap(what)} is already {row.status}; your vote changed nothing "
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
            inserted = await session.exec(_insert(session)(Vote).values(**vote).on_conflict_do_nothing(
                index_elements=["request_id", "user_id"]))  # type: ignore[call-overload]
            if not inserted.rowcount:
                return VoteResult("duplicate", "You have already voted on this; one vote per person.",
                                  request_id, row.status)
            roles = " & ".join(self.title(r) for r in held)
            verb = "approved" if choice == "approve" else "declined"
            late = f" (late: {duration(late_by)} after the {clock_time(row.deadline_at)} deadline)" \
                if late_by > 0 else ""
            timeline.record(session, row.incident_id, now, "vote",
                            f"<@{user}> {verb} {what} as {roles}{late}" + (f": {escape(reason)}" if reason else ""),
                            actor=user, request=request_id, vote=choice, roles=held,
                            **({"late": True, "late_seconds": late_by} if late_by > 0 else {}))
            outcome = await self._evaluate(session, row, policy)
            if outcome.status != "pending":
                decided = await self._decide(session, row, outcome, now, reason if choice == "decline" else None, what,
                                             user)
        counted = " It came after the deadline and still counts (marked late on the timeline)." if late else ""
        if decided:
            result = VoteResult("decided", f"{_cap(what)} is {outcome.status}: your vote decided it.{counted}",
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
            await self._after_decision(_Decision(result.request_id, result.status, user))
        elif result.kind == "recorded":
            await self.render(result.request_id)

    async def _evaluate(self, session: AsyncSession, row: ApprovalRequest, policy: Policy) -> Outcome:
        ballots = [Ballot(v.user_id, v.vote, frozenset(v.roles)) for v in await self._votes(session, row.id)]
        confirmed = True
        if row.subject != ROLLBACK:
            _execution, action = await self._action_of(session, row)
            if action is not None and action.confirmation is not None:
                confirmed = await self._confirmed_by(session, row) is not None
        return evaluate(policy, ballots, confirmed)

    def _waiting(self, outcome: Outcome) -> str:
        if outcome.missing:
            return ", ".join(self.title(r) for r in outcome.missing)
        return "the typed confirmation phrase" if outcome.status == "pending" else ""

    async def _decide(self, session: AsyncSession, row: ApprovalRequest, outcome: Outcome, now: datetime,
                      reason: str | None, what: str, user: str) -> bool:
        """The one conditional write that decides a request (and, for the rollback, the incident), with a durable
        safety net for what follows it. Opens no other session: the caller holds the request's lock."""
        result = await session.exec(update(ApprovalRequest).where(  # type: ignore[call-overload]
            ApprovalRequest.id == row.id, col(ApprovalRequest.status).in_(("pending", "expired"))).values(
            status=outcome.status, decided_at=now, reason=reason))
        if result.rowcount != 1:
            return False
        who = self._deciders(outcome)
        names = ", ".join(f"<@{u}>" + (f" ({self.title(r)})" if r else "") for u, r in who)
        text = f"{_cap(what)} {outcome.status} by {names}" + (f": {escape(reason)}" if reason else "")
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

    @staticmethod
    def _deciders(outcome: Outcome) -> list[tuple[str, str | None]]:
        if outcome.status == "declined":
            return [(outcome.decliner, None)] if outcome.decliner else []
        seen: dict[str, str] = {}
        for role, user in outcome.slots.items():
            seen.setdefault(user, role)
        return list(seen.items())

    async def _after_decision(self, decision: _Decision) -> None:
        """Render, announce, complete the decision step, emit the event; then mark it done for the safety-net timer."""
        request = await self.get(decision.request_id)
        incident_id = request.incident_id
        change = f"{request.id}:{decision.status}:{request.decided_at}"  # a re-opened vote decides anew
        await self.render(request.id)
        if request.subject != ROLLBACK:
            execution_id = request.subject.split(":", 1)[1]
            event = "action_approved" if decision.status == "approved" else "action_declined"
            await self.svc.events.emit(event, change=change, incident_id=incident_id, execution_id=execution_id)
        else:
            await self._announce_decision(request)
            rendered = False
            if decision.status == "approved":
                incident = await self._incident(incident_id)
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
        await self._after_decision(_Decision(request_id, str(timer.payload["status"]), str(timer.payload["user"])))

    async def _announce_decision(self, request: ApprovalRequest) -> None:
        incident = await self._incident(request.incident_id)
        if not incident.channel_id:
            return
        async with self.svc.db.session() as session:
            outcome = await self._evaluate(session, request, Policy.from_dict(request.policy))
        who = ", ".join(f"<@{u}>" + (f" ({self.title(r)})" if r else "") for u, r in self._deciders(outcome))
        at = clock_time(request.decided_at) if request.decided_at else ""
        if request.status == "approved":
            text = f":white_check_mark: *Rollback approved* by {who} at {at}. The rollback clock has started."
        else:
            text = f":x: *Rollback declined* by {who} at {at}" + (f": {escape(request.reason)}" if request.reason else ".")
        await self.svc.slack.put_message(incident.id, "decision_result", incident.channel_id, text)

    # --- the deadline ----------------------------------------------------------------------------------------

    async def on_decision_due(self, timer: Timer) -> None:
        """Still undecided at the deadline: the decision message turns overdue (its buttons stay live: a vote now
        still counts), the war room hears it in one message edited in place, and `decision_overdue` pulls the
        management ladder forward and pages the approvers' secondaries. Once per deadline."""
        now = self.svc.clock.now()
        request_id, deadline = timer.payload.get("request"), timer.payload.get("deadline")
        async with self.svc.db.session() as session:
            row = await self._lock(session, str(request_id))
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
                            f"Rollback decision overdue: {level.title} needs {policy.words(self.title)} within "
                            f"{level.decision_minutes:g} min (due {clock_time(row.deadline_at)})", request=row.id)
            overdue = await self.svc.events.emit("decision_overdue", session, change=f"{row.id}:{deadline}",
                                                 incident_id=row.incident_id)
        held = await self.svc.roles.holders(list(policy.roles), row.incident_id)
        people = [u for r in policy.roles for u in held.get(r, [])]
        if incident.channel_id:
            text = (f":warning: *The rollback decision is overdue* — it was due at {clock_time(row.deadline_at)} "
                    f"({level.title}: {level.decision_minutes:g} min). Needs: {policy.words(self.title)}.\n"
                    f"{mentions(people)}: Approve or Decline on the decision message still counts — decide now. "
                    "Management escalation is brought forward and the secondaries are paged.")
            # One overdue notice per incident, edited in place when a later deadline passes too.
            await self.svc.slack.put_message(row.incident_id, "decision_overdue", incident.channel_id, text)
        await self.render(row.id)
        # Its reactions (the ladder brought forward, the secondaries paged, the comms) are outbox rows written
        # with the overdue mark: worked now beside the incident's next timers, not before them (their DMs wait
        # for each person's DM channel, a message a second).
        self.svc.background(self.svc.events.deliver(overdue))

    # --- level changes and re-opening ---------------------------------------------------------------------------

    async def change_level(self, incident_id: str, level_id: str | None, user: str) -> str:
        """Set the incident's level (None: re-open the vote at the current level after its deadline passed): the
        policy and deadline are recomputed from now, votes cast in time count again under the new policy."""
        request = await self.rollback_request(incident_id)
        if request is None:
            raise Refused("This incident has no rollback decision.")
        incident = await self._require_open(incident_id)
        if request.status in DECIDED:
            raise Refused(f"The rollback was already {request.status}; the level can no longer change it.")
        target = level_id or incident.level
        try:
            level = self.svc.runbook.level(target)
        except KeyError:
            raise Refused("That level is not in this runbook.") from None
        interaction = "decision_level" if level_id else "decision_reopen"
        await authz.require(self.svc, interaction, user, self._subject(request), acting=False)  # maybe a no-op
        now = self.svc.clock.now()
        policy = Policy.from_model(level.approval)
        deadline = now + timedelta(minutes=level.decision_minutes)
        decided = False
        async with self.svc.db.session() as session:
            row = await self._lock(session, request.id)
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
                            f"<@{user}> {verb}: needs {policy.words(self.title)} by {clock_time(deadline)}",
                            actor=user, level=level.id, previous=old.id, request=row.id)
            outcome = await self._evaluate(session, row, policy)  # the votes cast in time, under the new policy
            if outcome.status != "pending":
                decided = await self._decide(session, row, outcome, now, None, "the rollback", user)
        await authz.acted(self.svc, incident_id, user, interaction)  # it changed something: they are on it
        held = await self.svc.roles.holders(list(policy.roles), incident_id)
        people = [u for r in policy.roles for u in held.get(r, [])]
        if incident.channel_id:
            await self.svc.slack.reply(incident.channel_id, None,
                                       f":arrows_counterclockwise: <@{user}> {verb}. Needs: {policy.words(self.title)}"
                                       f" by {clock_time(deadline)} — {mentions(people)}",
                                       owed=(incident_id, f"reply:level:{row.id}:{change}"))
        if decided:
            await self._after_decision(_Decision(request.id, outcome.status, user))
        else:
            await self.render(request.id)
            await self.warroom.refresh(incident_id)
        return f"{verb[0].upper()}{verb[1:]}: decide by {clock_time(deadline)}."

    # --- per-incident role overrides ---------------------------------------------------------------------------

    async def set_role(self, incident_id: str, role: str, target: str, by: str, follow_up: bool = True) -> tuple[str, bool]:
        """`/rollback role <role> @user`: allowed to the incident leads only (a role holder cannot hand out roles).
        Returns (message for `by`, whether anything changed); follow_up=False leaves `announce_role` to the caller."""
        await self._require_open(incident_id)
        try:
            title = self.title(role)
        except KeyError:
            raise Refused(f"Unknown role `{role}`.") from None
        now = self.svc.clock.now()
        await authz.require(self.svc, "/rollback role", by, authz.Subject(incident_id))
        async with self.svc.db.session() as session:
            inserted = await session.exec(_insert(session)(RoleOverride).values(
                incident_id=incident_id, role=role, user_id=target, set_by=by, at=now).on_conflict_do_nothing(
                index_elements=["incident_id", "role", "user_id"]))  # type: ignore[call-overload]
            if not inserted.rowcount:
                return f"<@{target}> already holds {title} for this incident.", False
            timeline.record(session, incident_id, now, "role_override",
                            f"<@{by}> gave <@{target}> the role {title} for this incident", actor=by, role=role,
                            user=target)
        if follow_up:
            await self.announce_role(incident_id, role, target, by)
        return f"<@{target}> now holds {title} for this incident.", True

    async def announce_role(self, incident_id: str, role: str, target: str, by: str) -> None:
        """Say it in the war room and re-render the open approvals (their holders changed)."""
        incident = await self._incident(incident_id)
        if incident.channel_id:
            await self.svc.slack.reply(incident.channel_id, None, f":bust_in_silhouette: <@{by}> gave <@{target}> "
                                       f"the role *{self.title(role)}* for this incident.",
                                       owed=(incident_id, f"reply:role:{role}:{target}"))
        for request in await self._pending(incident_id):
            await self.render(request.id)

    # --- destructive actions ---------------------------------------------------------------------------------

    async def _on_approval_needed(self, incident_id: str, execution_id: str, action_id: str, requested_by: str,
                                  **_: Any) -> None:
        await self.request_action(incident_id, execution_id, action_id, requested_by)

    async def request_action(self, incident_id: str, execution_id: str, action_id: str, requested_by: str) -> str:
        """What `approval_needed` (bot/executions/service.py) asks for: a request with the action's own policy (and
        its typed phrase), posted as its own message in the incident channel. Idempotent per execution; returns the
        request id. Later emits `action_approved` or `action_declined` [incident_id, execution_id]."""
        action = self.svc.runbook.action(action_id)
        now = self.svc.clock.now()
        subject = f"execution:{execution_id}"
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or await session.get(Execution, execution_id) is None:
                raise Refused("No such execution.")
            model = action.approval or self.svc.runbook.level(incident.level).approval
            policy = Policy.from_model(model)
            request_id = f"apr-{secrets.token_hex(6)}"
            inserted = await session.exec(_insert(session)(ApprovalRequest).values(
                id=request_id, incident_id=incident_id, subject=subject, policy=policy.to_dict(), status="pending",
                requested_by=requested_by, requested_at=now).on_conflict_do_nothing(
                index_elements=["incident_id", "subject"]))  # type: ignore[call-overload]
            if inserted.rowcount:
                phrase = " and the typed confirmation phrase" if action.confirmation else ""
                timeline.record(session, incident_id, now, "approval_requested",
                                f"{action.title} needs approval: {policy.words(self.title)}{phrase}",
                                actor=requested_by, request=request_id, execution=execution_id, action=action.id)
            else:
                request_id = (await session.exec(select(ApprovalRequest.id).where(
                    ApprovalRequest.incident_id == incident_id, ApprovalRequest.subject == subject))).one()
        await self.render(request_id)
        return request_id

    async def open_confirmation(self, request_id: str, user: str) -> Challenge:
        """A single-use, five-minute challenge for `user` to type the action's phrase (the requester or an approver)."""
        request = await self.get(request_id)
        await self._require_open(request.incident_id)
        async with self.svc.db.session() as session:
            execution, action = await self._action_of(session, request)
        if execution is None or action is None or action.confirmation is None:
            raise Refused("This approval needs no typed confirmation.")
        if request.status != "pending":
            raise Refused(f"This approval is already {request.status}.")
        await authz.require(self.svc, "action_confirm", user, self._subject(request))
        phrase = fill_phrase(action.confirmation.phrase, {**execution.params, **execution.data.get("values", {})})
        now = self.svc.clock.now()
        challenge = ConfirmationChallenge(id=f"cc-{secrets.token_hex(8)}", incident_id=request.incident_id,
                                          subject=request.subject, user_id=user, phrase_sha256=phrase_digest(phrase),
                                          expires_at=now + timedelta(seconds=CONFIRM_SECONDS))
        async with self.svc.db.session() as session:
            if await self._confirmed_by(session, request) is not None:
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
            await authz.refuse(self.svc, "view:action_confirm_phrase", user, self._subject(request),
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
                _execution, action = await self._action_of(session, row)
                outcome = await self._evaluate(session, row, Policy.from_dict(row.policy))
                if outcome.status != "pending":
                    what = action.title if action else row.subject
                    decided = await self._decide(session, row, outcome, now, None, what, user)
        if problem:
            raise Refused(problem)
        if decided:
            result = VoteResult("decided", f"Confirmed: the action is {outcome.status}.", row.id, outcome.status)
        else:
            waiting = ", ".join(self.title(r) for r in outcome.missing)
            result = VoteResult("recorded", "Confirmed." + (f" Still needed: {waiting}." if waiting else ""),
                                row.id, "pending")
        if follow_up:
            await self.follow_up(result, user)
        return result

    async def _action_of(self, session: AsyncSession,
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

    @staticmethod
    async def _confirmed_by(session: AsyncSession, request: ApprovalRequest) -> ConfirmationChallenge | None:
        return (await session.exec(select(ConfirmationChallenge).where(
            ConfirmationChallenge.incident_id == request.incident_id, ConfirmationChallenge.subject == request.subject,
            col(ConfirmationChallenge.used_at).is_not(None)).order_by(col(ConfirmationChallenge.used_at)))).first()

    # --- rendering ----------------------------------------------------------------------------------------------

    async def render(self, request_id: str) -> None:
        """Re-render a request's message from the store. Concurrent calls coalesce: one render runs at a time per
        request and runs once more if anything changed meanwhile, so 50 clicks cause a few updates, not 50."""
        if request_id in self._rendering:
            self._dirty.add(request_id)
            return
        self._rendering.add(request_id)
        try:
            while True:
                self._dirty.discard(request_id)
                await self._render(request_id)
                if request_id not in self._dirty:
                    break
        finally:
            self._rendering.discard(request_id)

    async def _render(self, request_id: str) -> None:
        view, incident, key = await self.view(request_id)
        if not incident.channel_id:
            return
        # Every approval is its own message in the channel, where its deciders look (not in the header's
        # thread), and a gated action's approvers are told by DM once.
        await self.svc.slack.put_message(incident.id, key, incident.channel_id, approval_text(view),
                                         approval_blocks(view))
        if key != DECISION_KEY and view.status == "pending":
            async with self.svc.db.session() as session:
                request = await session.get(ApprovalRequest, request_id)
            if request is not None:
                await tell_deciders(self.svc, incident.id, key, list(Policy.from_dict(request.policy).roles),
                                    f"{'[DRILL] ' if incident.is_drill else ''}✋ Your approval is needed: "
                                    f"*{view.title}* in <#{incident.channel_id}>",
                                    exclude=frozenset({request.requested_by}))

    async def view(self, request_id: str) -> tuple[ApprovalView, Incident, str]:
        """Everything the approval message shows, read in one go."""
        async with self.svc.db.session() as session:
            request = await session.get(ApprovalRequest, request_id)
            if request is None:
                raise Refused("No such approval request.")
            incident = await session.get(Incident, request.incident_id)
            assert incident is not None
            votes = await self._votes(session, request_id)
            execution, action = await self._action_of(session, request)
            confirmation = await self._confirmed_by(session, request) if action and action.confirmation else None
            policy = Policy.from_dict(request.policy)
            outcome = await self._evaluate(session, request, policy)
        held = await self.svc.roles.holders(list(policy.roles), incident.id)
        runbook = self.svc.runbook
        filled = outcome.slots if request.status != "declined" else {}
        roles = tuple(RoleLine(r, self.title(r), tuple(held.get(r, [])), filled.get(r)) for r in policy.roles)
        votes_shown = tuple(VoteLine(v.user_id, v.vote, tuple(self.title(r) for r in v.roles if _known(runbook, r)),
                                     v.at, v.reason) for v in votes)
        deciders = tuple(u for u, _ in self._deciders(outcome)) if request.status in DECIDED else ()
        common: dict[str, Any] = dict(
            request_id=request.id, subject=request.subject, policy_kind=policy.kind, needs=policy.words(self.title),
            roles=roles, status=request.status, now=self.svc.clock.now(), requested_by=request.requested_by,
            votes=votes_shown, missing=tuple(self.title(r) for r in outcome.missing), deadline=request.deadline_at,
            decided_at=request.decided_at, reason=request.reason, decided_by=deciders, is_drill=incident.is_drill)
        if request.subject == ROLLBACK:
            level = runbook.level(incident.level)
            levels = tuple(LevelChoice(lv.id, lv.title, lv.decision_minutes, Policy.from_model(lv.approval).words(
                self.title)) for lv in runbook.levels if lv.id != level.id)
            view = ApprovalView(title=level.title, description=level.description, levels=levels, **common)
        else:  # an action's approval (its execution row is there unless the store was edited by hand)
            details = tuple(f"{param_label(k)}: `{escape(str(v))}`" for k, v in execution.params.items()) \
                if execution else ()
            step = procedure_for(runbook, incident.scenario_id).step(execution.step_id) \
                if execution and execution.step_id else None
            view = ApprovalView(
                title=action.title if action else request.subject,
                description=f"Step {step.number}: {step.title}" if step else "", details=details,
                confirmation_prompt=action.confirmation.prompt if action and action.confirmation else "",
                confirmed_by=confirmation.user_id if confirmation else None,
                confirmed_at=confirmation.used_at if confirmation else None, **common)
        return view, incident, message_key(request)

    # --- helpers ------------------------------------------------------------------------------------------------

    @staticmethod
    async def _lock(session: AsyncSession, request_id: str) -> ApprovalRequest | None:
        return (await session.exec(select(ApprovalRequest).where(
            ApprovalRequest.id == request_id).with_for_update())).first()

    @staticmethod
    async def _votes(session: AsyncSession, request_id: str) -> list[Vote]:
        return list((await session.exec(select(Vote).where(Vote.request_id == request_id).order_by(
            col(Vote.at), col(Vote.id)))).all())

    async def _pending(self, incident_id: str) -> list[ApprovalRequest]:
        async with self.svc.db.session() as session:
            return list((await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.incident_id == incident_id,
                col(ApprovalRequest.status).in_(("pending", "expired"))))).all())

    async def _incident(self, incident_id: str) -> Incident:
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None:
            raise Refused("No such incident.")
        return incident

    async def _require_open(self, incident_id: str) -> Incident:
        incident = await self._incident(incident_id)
        if incident.status != "open":
            raise Refused(f"The incident is {incident.status}.")
        return incident

    async def _what(self, request: ApprovalRequest) -> str:
        if request.subject == ROLLBACK:
            return "the rollback"
        async with self.svc.db.session() as session:
            _execution, action = await self._action_of(session, request)
        return action.title if action else request.subject

    async def _audit(self, incident_id: str, kind: str, text: str, actor: str | None = None, **data: Any) -> None:
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), kind, text, actor=actor, **data)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _known(runbook: Any, role: str) -> bool:
    return any(r.id == role for r in runbook.roles)
