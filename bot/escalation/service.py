"""Paging and the escalation ladder, every step a durable timer.

Responders are paged by DM when the war room opens; a primary who does not acknowledge within the role's
response time brings the secondary in. Acting in the incident (a tick, a vote, a run) acknowledges the person's
pages as the Acknowledge button does, so only someone who has not done anything yet needs the button. The
management ladder (notifications, nothing to acknowledge: PM +5, CTO +10, CEO +15, Board +30 by the
default runbook) fires at its times after declaration, stops when the rollback completes or the incident
closes, and a missed decision deadline escalates to the next rung at once. A Page row is written before its
DM is sent, so a restart neither repeats nor loses one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import authz, timeline, timers
from bot.core.once import claim_once
from bot.core.services import Services
from bot.escalation.pages import Pages
from bot.runbook.model import Rung
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import duration, mentions
from bot.store.models import Incident, Page, Timer

log = logging.getLogger(__name__)
RUNG = "escalation_rung"
PAGE_TIMEOUT = "page_timeout"


class Escalation:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.pages = Pages(svc)
        svc.events.on("declared", self._schedule_ladder, name="escalation.schedule_ladder", inline=True)
        svc.timers.on(RUNG, self.on_rung)
        svc.timers.on(PAGE_TIMEOUT, self.on_page_timeout, ordered=False)  # each role's page its own deadline
        svc.events.on("war_room_ready", self.page_responders, name="escalation.page_responders")
        svc.events.on("decision_overdue", self.escalate_now, name="escalation.escalate_now")
        svc.events.on("decision_overdue", self.page_decision_secondaries, name="escalation.page_decision_secondaries")
        svc.events.on("closed", self._stop_ladder, name="escalation.stop_ladder")
        svc.events.on("moment", self._on_moment, name="escalation.on_moment")
        svc.events.on("pages_acked_by_acting", self._show_acked_by_acting, name="escalation.show_acked_by_acting")
        svc.events.on("acted", self.acknowledge_by_acting, name="escalation.acknowledge_by_acting", inline=True)

    # --- responders ------------------------------------------------------------------------------------

    def responder_roles(self, incident: Incident) -> list[str]:
        """Responder roles this incident needs: the level's approvers and paged roles, and step owners."""
        runbook = self.svc.runbook
        level = runbook.level(incident.level)
        wanted = [*level.approval.roles, *level.page_roles,
                  *(s.owner for s in procedure_for(runbook, incident.scenario_id).steps())]
        return [r for r in dict.fromkeys(wanted) if runbook.role(r).responder]

    async def page_responders(self, incident_id: str, **_: Any) -> None:
        incident = await self.svc.incident(incident_id)
        now = self.svc.clock.now()
        for role_id in self.responder_roles(incident):
            role = self.svc.runbook.role(role_id)
            users = await self.pages.eligible(incident, await self.svc.roles.tier(role_id, "primary"))
            await self.pages.page(incident, role_id, users, "primary")
            async with self.svc.db.session() as session:
                await timers.schedule(session, key=f"{incident_id}:{PAGE_TIMEOUT}:{role_id}", kind=PAGE_TIMEOUT,
                                      due_at=now + timedelta(minutes=role.response_minutes or 5),
                                      incident_id=incident_id, payload={"role": role_id})

    async def on_page_timeout(self, timer: Timer) -> None:
        incident = await self.svc.incident(timer.incident_id or "")
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
        sent = await self.pages.page(incident, role_id, await self._secondaries(incident, role_id), "secondary")
        await self.pages.thread(incident.id, f"reply:{timer.key}",
                           f"📟 No acknowledgement from the primary {role.title} within "
                           f"{role.response_minutes:g} min: paging the secondary {mentions(sent)}."
                           if sent else f"📟 No acknowledgement from the primary {role.title}, and no secondary "
                                        "is on the roster.")

    async def page_decision_secondaries(self, incident_id: str, **_: Any) -> None:
        """A missed decision deadline brings in the secondaries of the roles that can decide (for the default
        runbook's immediate and urgent levels: the Technical Lead's and the DevOps Lead's), acknowledged or not.
        One Page row per person and tier makes a repeat harmless."""
        incident = await self.svc.incident(incident_id)
        if incident.status != "open" or incident.decision is not None:
            return
        for role_id in self.svc.runbook.level(incident.level).approval.roles:
            role = self.svc.runbook.role(role_id)
            sent = await self.pages.page(incident, role_id, await self._secondaries(incident, role_id), "secondary")
            if sent:
                await self.pages.thread(incident.id, f"reply:secondaries:{role_id}:{','.join(sent)}",
                                   f"📟 The rollback decision is overdue: paging the secondary "
                                                f"{role.title} {mentions(sent)}.")

    async def _secondaries(self, incident: Incident, role_id: str) -> list[str]:
        """The role's secondary tier without its primaries (a user group may hold both): nobody backs up themself."""
        primaries = set(await self.svc.roles.tier(role_id, "primary"))
        secondaries = [u for u in await self.svc.roles.tier(role_id, "secondary") if u not in primaries]
        return await self.pages.eligible(incident, secondaries)

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
        incident = await self.svc.incident(timer.incident_id or "")
        if incident.status != "open":
            return
        rung = self._rung(int(timer.payload["level"]))
        role = self.svc.runbook.role(rung.role)
        users = await self.pages.eligible(incident, await self.svc.roles.members(rung.role, incident.id))
        # A previous attempt (a crash, a retry) may have written some of this rung's pages: the ones not sent go
        # now (keyed: one already in Slack is found, not sent again), and the thread names them too.
        async with self.svc.db.session() as session:
            earlier = (await session.exec(select(Page).where(
                Page.incident_id == incident.id, Page.role == rung.role, Page.tier == "management"))).all()
        sent_now = await self.pages.page(incident, rung.role, users, "management")
        await asyncio.gather(*(self.pages.deliver_or_soon(p.user_id, p.id or 0) for p in earlier if not p.ts))
        sent = [u for u in users if u in {p.user_id for p in earlier} or u in sent_now]
        elapsed = (self.svc.clock.now() - incident.declared_at).total_seconds()
        why = f" ({early})" if early else ""
        if incident.is_drill and not users:
            await self.pages.thread(incident.id, f"reply:{timer.key}",
                               f"🧪 Escalation level {rung.level} ({role.title}) reached at "
                               f"+{duration(elapsed)}: not sent, {role.title} is not a drill participant.")
            return
        await self.pages.thread(incident.id, f"reply:{timer.key}",
                           f"📣 Escalation level {rung.level}: {role.title} told at +{duration(elapsed)}"
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
        await self.pages.thread(incident_id, "reply:ladder_stopped",
                           f"🛑 Escalation stopped: {reason}. Not reached, cancelled: {names}.")

    async def acknowledge(self, page_id: int, user: str, channel: str | None = None, ts: str | None = None) -> str:
        """`channel`/`ts`: the message the Acknowledge button was clicked in; it must be the page's own DM."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            page = await session.get(Page, page_id)
        if page is None:
            return "That page is not yours."
        subject = authz.Subject(page.incident_id, paged=page.user_id)
        try:
            if page.ts is None or (channel, ts) != (page.channel, page.ts):  # bound to the DM the page went in
                await authz.refuse(self.svc, "page_ack", user, subject, "That Acknowledge button is not from this page.")
            await authz.require(self.svc, "page_ack", user, subject)
        except authz.Refused as exc:
            return str(exc)
        async with self.svc.db.session() as session:
            result = await session.exec(update(Page).where(  # type: ignore[call-overload]
                Page.id == page_id, col(Page.acked_at).is_(None)).values(acked_at=now))
            if result.rowcount != 1:
                return "Already acknowledged."
            took = (now - page.sent_at).total_seconds()
            role = self.svc.runbook.role(page.role).title
            timeline.record(session, page.incident_id, now, "page_acked",
                            f"{role} <@{user}> acknowledged after {duration(took)}", actor=user, role=page.role,
                            seconds=took)
        await self.pages.show_page(page)
        await self.pages.thread(page.incident_id, f"reply:page_acked:{page_id}",
                           f"👋 {role} <@{user}> acknowledged after {duration(took)}.")
        return f"Acknowledged after {duration(took)}."

    async def acknowledge_by_acting(self, incident_id: str, user: str, interaction: str) -> None:
        """A paged person who acts in the incident (ticks, votes, runs...) is on it: each of their pages of this
        incident not yet acknowledged (a management notification asks for none) is acknowledged now, on the
        timeline as such, which stops that page's escalation to the secondary exactly as the Ack button does.
        Only the person's own pages: nobody acknowledges for someone else."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            pages = (await session.exec(select(Page).where(
                Page.incident_id == incident_id, Page.user_id == user, Page.tier != "management",
                col(Page.acked_at).is_(None)))).all()
            acked: list[int] = []
            for page in pages:
                result = await session.exec(update(Page).where(  # type: ignore[call-overload]
                    Page.id == page.id, col(Page.acked_at).is_(None)).values(acked_at=now))
                if result.rowcount != 1:
                    continue  # the Ack button or another act won the race
                took = (now - page.sent_at).total_seconds()
                role = self.svc.runbook.role(page.role).title
                timeline.record(session, incident_id, now, "page_acked",
                                f"{role} <@{user}> acknowledged after {duration(took)} by acting in the incident",
                                actor=user, role=page.role, seconds=took, by=interaction)
                acked.append(page.id or 0)
            if not acked:
                return
            change = f"{incident_id}:acked:{','.join(map(str, acked))}"
            out = await self.svc.events.emit("pages_acked_by_acting", session, change=change,
                                             incident_id=incident_id, user=user, pages=acked)
        # The DMs and the thread line are Slack calls: after the click's own work, not in front of its answer.
        self.svc.background(self.svc.events.deliver(out))

    async def _show_acked_by_acting(self, incident_id: str, user: str, pages: list[int], **_: Any) -> None:
        """The page DMs lose their Acknowledge button; the header thread says who is on it, once."""
        titles = []
        for page_id in pages:
            async with self.svc.db.session() as session:
                page = await session.get(Page, page_id)
            if page is None or page.acked_at is None:
                continue
            titles.append(self.svc.runbook.role(page.role).title)
            await self.pages.show_page(page, by_acting=True)
        if titles:
            await self.pages.thread(incident_id, f"reply:acked_by_acting:{','.join(map(str, sorted(pages)))}",
                               f"👋 {' and '.join(dict.fromkeys(titles))} <@{user}> is on it "
                               "(acted in the incident): page acknowledged.")
