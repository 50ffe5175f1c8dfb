"""A page: its row, written before its DM with a delivery timer, and the DM, sent once and shown as it stands.

A DM lost to a crash, a Slack outage or a network error is sent by the delivery timer, retried until it goes;
a refusal no retry can change (no such user, a bot) is said in the incident thread instead.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from bot.core import timeline, timers
from bot.core.services import Services
from bot.escalation.views import PageView, acked_text, page_blocks, page_text
from bot.slack.blocks import mentions
from bot.slack.client import refused_for_good
from bot.store.models import Incident, Page, Timer

log = logging.getLogger(__name__)
PAGE_DELIVERY = "page_delivery"
DELIVERY_GRACE = timedelta(seconds=30)
RETRY_SOON = timedelta(seconds=5)
# What a DM may fail with that a later attempt can fix: Slack 5xx/429, the network, a hung connection.
RETRYABLE = (SlackApiError, httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError)


def delivery_key(page_id: int) -> str:
    return f"page:{page_id}:{PAGE_DELIVERY}"


class Pages:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        svc.timers.on(PAGE_DELIVERY, self.on_page_delivery, ordered=False)  # each page its own delivery

    async def eligible(self, incident: Incident, users: list[str]) -> list[str]:
        """In a drill, DMs go only to the drill's participants."""
        if not incident.is_drill:
            return users
        participants = set(await self.svc.roles.resolve_contacts(list(self.svc.roster.drill_participants)))
        return [u for u in users if u in participants]

    async def page(self, incident: Incident, role_id: str, users: list[str], tier: str) -> list[str]:
        """One Page row per (incident, role, user, tier), written before the DM together with a delivery timer:
        a DM lost to a crash, a Slack outage or a network error is sent by that timer, retried until it goes."""
        recorded: list[tuple[str, int]] = []
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
                    # Due after a grace longer than one DM takes, so it never races the DM sent just below.
                    await timers.schedule(session, key=delivery_key(page_id or 0), kind=PAGE_DELIVERY,
                                          due_at=now + DELIVERY_GRACE, incident_id=incident.id,
                                          payload={"page": page_id})
            except IntegrityError:
                continue  # already paged (a retried timer, another replica)
            assert page_id is not None
            recorded.append((user, page_id))
        # Every row is written (with its delivery timer) first; the DMs then go out side by side, not one by one.
        delivered = await asyncio.gather(*(self.deliver_or_soon(user, page_id) for user, page_id in recorded))
        return [user for (user, _), ok in zip(recorded, delivered, strict=True) if ok]

    async def deliver_or_soon(self, user: str, page_id: int) -> bool:
        try:
            return await self.deliver(page_id)
        except RETRYABLE as exc:
            log.warning("page to %s failed (%r); its delivery timer retries it", user, exc)
            async with self.svc.db.session() as session:
                await session.exec(update(Timer).where(  # type: ignore[call-overload]
                    Timer.key == delivery_key(page_id), Timer.status == "pending").values(
                        due_at=self.svc.clock.now() + RETRY_SOON))
            return False

    async def on_page_delivery(self, timer: Timer) -> None:
        """The DM of a page that was recorded and not (known to be) sent: send it now; raising retries it."""
        await self.deliver(int(timer.payload["page"]))

    async def deliver(self, page_id: int) -> bool:
        """Send the page's DM unless it went already; True when it is sent. A refusal by Slack that no retry can
        change (no such user, a bot) is said in the thread instead."""
        async with self.svc.db.session() as session:
            page = await session.get(Page, page_id)
        if page is None or page.ts:
            return page is not None
        view = await self.view(page.incident_id, page_id)
        try:
            channel, ts = await self.svc.slack.dm(page.user_id, page_text(view), page_blocks(view),
                                                  key=f"page:{page_id}")  # sent once, even if an answer is lost
        except SlackApiError as exc:
            if not refused_for_good(exc):
                raise  # the timer tries again
            log.warning("page to %s refused: %s", page.user_id, exc.response.get("error"))
            await self.cancel_delivery(page.incident_id, page_id)
            await self.thread(page.incident_id, f"reply:page_refused:{page_id}",
                               f"⚠️ Could not DM <@{page.user_id}> ({exc.response.get('error')}).")
            return False
        async with self.svc.db.session() as session:
            row = await session.get(Page, page_id)
            assert row is not None
            row.channel, row.ts = channel, ts
            await timers.cancel(session, page.incident_id, key_prefix=delivery_key(page_id))
        return True

    async def cancel_delivery(self, incident_id: str, page_id: int) -> None:
        async with self.svc.db.session() as session:
            await timers.cancel(session, incident_id, key_prefix=delivery_key(page_id))

    async def show_page(self, page: Page, by_acting: bool = False) -> None:
        """The page's DM as it now stands (acknowledged: no button). Not sent yet: its delivery sends this."""
        if page.channel and page.ts:
            view = await self.view(page.incident_id, page.id or 0)
            await self.svc.slack.call("chat.update", channel=page.channel, ts=page.ts, text=page_text(view),
                                      blocks=[b.to_dict() for b in page_blocks(view, by_acting=by_acting)])

    async def view(self, incident_id: str, page_id: int) -> PageView:
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

    async def thread(self, incident_id: str, key: str, text: str) -> None:
        """In the header's thread, once per `key`: a retried row or a lost answer never says it twice."""
        ref = await self.svc.slack.message_ref(incident_id, "header")
        if ref is not None:
            await self.svc.slack.reply(ref.channel, ref.ts, text, owed=(incident_id, key))
