"""Paging and the escalation ladder, every step a durable timer.

Responders are paged by DM when the war room opens; a primary who does not acknowledge within the role's
response time brings the secondary in. The management ladder (PM +5, CTO +10, CEO +15, Board +30 by the
default runbook) fires at its times after declaration, stops when the rollback completes or the incident
closes, and a missed decision deadline escalates to the next rung at once. A Page row is written before its
DM is sent, so a restart neither repeats nor loses one.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.engine import timeline, timers
from bot.engine.once import claim_once
from bot.engine.procedure import procedure_for
from bot.engine.services import Services
from bot.runbook.model import Rung
from bot.store.models import Incident, Page, Timer
from bot.views.common import duration, mentions
from bot.views.page import PageView, acked_text, page_blocks, page_text

log = logging.getLogger(__name__)
RUNG = "escalation_rung"
PAGE_TIMEOUT = "page_timeout"


class Escalation:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        svc.on_declare.append(self._schedule_ladder)
        svc.timers.on(RUNG, self.on_rung)
        svc.timers.on(PAGE_TIMEOUT, self.on_page_timeout)
        svc.events.on("war_room_ready", self.page_responders)
        svc.events.on("decision_overdue", self.escalate_now)
        svc.events.on("closed", self._stop_ladder)
        svc.events.on("moment", self._on_moment)

    # --- responders ------------------------------------------------------------------------------------

    def responder_roles(self, incident: Incident) -> list[str]:
        """Responder roles this incident needs: the level's approvers and paged roles, and step owners."""
        runbook = self.svc.runbook
        level = runbook.level(incident.level)
        wanted = [*level.approval.roles, *level.page_roles,
                  *(s.owner for s in procedure_for(runbook, incident.scenario_id).steps())]
        return [r for r in dict.fromkeys(wanted) if runbook.role(r).responder]

    async def page_responders(self, incident_id: str, **_: Any) -> None:
        incident = await self._incident(incident_id)
        now = self.svc.clock.now()
        for role_id in self.responder_roles(incident):
            role = self.svc.runbook.role(role_id)
            users = await self._eligible(incident, await self.svc.roles.tier(role_id, "primary"))
            await self._page(incident, role_id, users, "primary")
            async with self.svc.db.session() as session:
                await timers.schedule(session, key=f"{incident_id}:{PAGE_TIMEOUT}:{role_id}", kind=PAGE_TIMEOUT,
                                      due_at=now + timedelta(minutes=role.response_minutes or 5),
                                      incident_id=incident_id, payload={"role": role_id})

    async def on_page_timeout(self, timer: Timer) -> None:
        incident = await self._incident(timer.incident_id or "")
        role_id = timer.payload["role"]
        if incident.status != "open":
            return
        async with self.svc.db.session() as session:
            acked = (await session.exec(select(Page).where(
                Page.incident_id == incident.id, Page.role == role_id, Page.tier == "primary",
                col(Page.acked_at).is_not(None)))).first()
        if acked is not None:
            return
        role = self.svc.runbook.role(role_id)
        secondaries = await self._eligible(incident, await self.svc.roles.tier(role_id, "secondary"))
        sent = await self._page(incident, role_id, secondaries, "secondary")
        await self._thread(incident.id, f"📟 No acknowledgement from the primary {role.title} within "
                                        f"{role.response_minutes:g} min: paging the secondary {mentions(sent)}."
                           if sent else f"📟 No acknowledgement from the primary {role.title}, and no secondary "
                                        "is on the roster.")

    # --- the management ladder ---------------------------------------------------------------------------

    async def _schedule_ladder(self, session: AsyncSession, incident: Incident) -> None:
        for rung in self.svc.runbook.escalation.management:
            await timers.schedule(session, key=self._rung_key(incident.id, rung), kind=RUNG,
                                  due_at=incident.declared_at + timedelta(minutes=rung.minutes),
                                  incident_id=incident.id, payload={"level": rung.level})

    @staticmethod
    def _rung_key(incident_id: str, rung: Rung) -> str:
        return f"{incident_id}:{RUNG}:{rung.level}"

    def _rung(self, level: int) -> Rung:
        return next(r for r in self.svc.runbook.escalation.management if r.level == level)

    async def on_rung(self, timer: Timer, early: str | None = None) -> None:
        incident = await self._incident(timer.incident_id or "")
        if incident.status != "open":
            return
        rung = self._rung(int(timer.payload["level"]))
        role = self.svc.runbook.role(rung.role)
        users = await self._eligible(incident, await self.svc.roles.members(rung.role, incident.id))
        sent = await self._page(incident, rung.role, users, "management")
        elapsed = (self.svc.clock.now() - incident.declared_at).total_seconds()
        why = f" ({early})" if early else ""
        if incident.is_drill and not users:
            await self._thread(incident.id, f"🧪 Escalation level {rung.level} ({role.title}) reached at "
                                            f"+{duration(elapsed)}: not sent, {role.title} is not a drill participant.")
            return
        await self._thread(incident.id, f"📣 Escalation level {rung.level}: {role.title} told at +{duration(elapsed)}"
                                        f"{why}: {mentions(sent)}")

    async def escalate_now(self, incident_id: str, **_: Any) -> None:
        """A missed decision deadline: the next rung not yet reached fires now, and its timer never fires again."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            pending = (await session.exec(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind == RUNG, Timer.status == "pending")
                .order_by(Timer.due_at))).first()
            if pending is None:
                return
            claimed = await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.id == pending.id, Timer.status == "pending").values(
                    status="fired", fired_at=now, claimed_by=f"{self.svc.settings.replica_id}:decision_overdue"))
            if claimed.rowcount != 1:
                return
            timeline.record(session, incident_id, now, "escalated_early",
                            f"Decision overdue: escalation level {pending.payload['level']} brought forward")
        await self.on_rung(pending, early="brought forward: the rollback decision is overdue")

    async def _on_moment(self, incident_id: str, moment: str, **_: Any) -> None:
        if moment == "rollback_completed":
            await self._stop_ladder(incident_id, reason="the rollback completed")

    async def _stop_ladder(self, incident_id: str, reason: str = "the incident closed", **_: Any) -> None:
        """Cancel the rungs not reached (another listener may have cancelled every timer already) and say so once."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            left = (await session.exec(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind == RUNG,
                col(Timer.status).in_(["pending", "cancelled"])).order_by(Timer.due_at))).all()
            await timers.cancel(session, incident_id, kinds=[RUNG, PAGE_TIMEOUT])
            if not left or not await claim_once(session, f"{incident_id}:ladder_stopped", self.svc.settings.replica_id,
                                                now):
                return
            timeline.record(session, incident_id, now, "escalation_stopped",
                            f"Escalation stopped ({reason}); {len(left)} level(s) not reached cancelled")
        names = ", ".join(f"level {t.payload['level']} ({self.svc.runbook.role(self._rung(t.payload['level']).role).title})"
                          for t in left)
        await self._thread(incident_id, f"🛑 Escalation stopped: {reason}. Not reached, cancelled: {names}.")

    # --- sending ---------------------------------------------------------------------------------------

    async def _eligible(self, incident: Incident, users: list[str]) -> list[str]:
        """In a drill, DMs go only to the drill's participants."""
        if not incident.is_drill:
            return users
        participants = set(await self.svc.roles.resolve_contacts(list(self.svc.roster.drill_participants)))
        return [u for u in users if u in participants]

    async def _page(self, incident: Incident, role_id: str, users: list[str], tier: str) -> list[str]:
        """One Page row per (incident, role, user, tier), written before the DM: exactly once across restarts."""
        sent: list[str] = []
        for user in users:
            now = self.svc.clock.now()
            try:
                async with self.svc.db.session() as session:
                    page = Page(incident_id=incident.id, role=role_id, user_id=user, tier=tier, sent_at=now)
                    session.add(page)
                    await session.flush()
                    page_id = page.id
                    role = self.svc.runbook.role(role_id)
                    verb = "Escalated to" if tier == "management" else "Paged"
                    timeline.record(session, incident.id, now, "escalated" if tier == "management" else "paged",
                                    f"{verb} {role.title} <@{user}>" + (" (secondary)" if tier == "secondary" else ""),
                                    role=role_id, user=user, tier=tier)
            except IntegrityError:
                continue  # already paged (a retried timer, another replica)
            assert page_id is not None
            view = await self._view(incident.id, page_id)
            try:
                channel, ts = await self.svc.slack.dm(user, page_text(view), page_blocks(view))
            except SlackApiError as exc:
                log.warning("page to %s failed: %s", user, exc.response.get("error"))
                await self._thread(incident.id, f"⚠️ Could not DM <@{user}> ({exc.response.get('error')}).")
                continue
            async with self.svc.db.session() as session:
                row = await session.get(Page, page_id)
                assert row is not None
                row.channel, row.ts = channel, ts
            sent.append(user)
        return sent

    async def acknowledge(self, page_id: int, user: str) -> str:
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            page = await session.get(Page, page_id)
            if page is None or page.user_id != user:
                return "That page is not yours."
            result = await session.exec(update(Page).where(  # type: ignore[call-overload]
                Page.id == page_id, col(Page.acked_at).is_(None)).values(acked_at=now))
            if result.rowcount != 1:
                return "Already acknowledged."
            took = (now - page.sent_at).total_seconds()
            role = self.svc.runbook.role(page.role).title
            timeline.record(session, page.incident_id, now, "page_acked",
                            f"{role} <@{user}> acknowledged after {duration(took)}", actor=user, role=page.role,
                            seconds=took)
        view = await self._view(page.incident_id, page_id)
        if page.channel and page.ts:
            await self.svc.slack.call("chat.update", channel=page.channel, ts=page.ts, text=page_text(view),
                                      blocks=[b.to_dict() for b in page_blocks(view)])
        await self._thread(page.incident_id, f"👋 {role} <@{user}> acknowledged after {duration(took)}.")
        return f"Acknowledged after {duration(took)}."

    async def _view(self, incident_id: str, page_id: int) -> PageView:
        snap = await self.svc.snapshot(incident_id)
        async with self.svc.db.session() as session:
            page = await session.get(Page, page_id)
        assert page is not None
        inc, runbook = snap.incident, snap.runbook
        phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
        leads = [u for r in runbook.incident_lead_roles for u in snap.holders.get(r, [])[:1]] or \
            [u for users in snap.holders.values() for u in users[:1]]
        decision = {None: "pending", "approved": "rollback approved", "declined": "rollback declined"}.get(
            inc.decision, inc.decision or "pending")
        team = self.svc.slack.team_id
        url = f"https://app.slack.com/client/{team}/{inc.channel_id}" if team and inc.channel_id else None
        acked = acked_text((page.acked_at - page.sent_at).total_seconds(), page.acked_at) if page.acked_at else None
        return PageView(page_id=page_id, kind={"primary": "responder"}.get(page.tier, page.tier),
                        role_title=runbook.role(page.role).title, incident_id=inc.id, title=inc.title,
                        level=runbook.level(inc.level).title,
                        phase=f"{phase.number}. {phase.title}" if phase else "—",
                        elapsed_seconds=snap.elapsed_seconds, rto_minutes=runbook.objectives.rto_minutes,
                        working=mentions(leads), decision=decision, channel_id=inc.channel_id, channel_url=url,
                        is_drill=inc.is_drill, acked_at_text=acked)

    async def _thread(self, incident_id: str, text: str) -> None:
        ref = await self.svc.slack.message_ref(incident_id, "header")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.ts, text)

    async def _incident(self, incident_id: str) -> Incident:
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        assert incident is not None, incident_id
        return incident
