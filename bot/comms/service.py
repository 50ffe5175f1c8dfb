"""Customer and stakeholder communications: drafts from the runbook's templates at the moments the runbook names,
approved by the template's approver role, edited and marked as sent, every move on the timeline. An approved
status-page update goes to Atlassian Statuspage when it is configured; otherwise it stays a draft to copy."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.comms.facts import facts
from bot.comms.views import AUDIENCE, draft_blocks, draft_text, text_version
from bot.core import authz, drill_guard, timeline, timers
from bot.core.decider_dm import tell_deciders
from bot.core.errors import Refused
from bot.core.people import People
from bot.core.services import Services
from bot.core.wallclock import time_of
from bot.reports import history
from bot.runbook.model import CommsTemplate
from bot.runbook.templating import render_template
from bot.slack.blocks import drill_prefix
from bot.store.models import CommsDraft, Incident, Timer

log = logging.getLogger(__name__)


REMINDER = "comms_update_due"
PAGE_STATUSES = ("investigating", "identified", "monitoring", "resolved")  # Statuspage's order, never backwards


class Comms:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.people = People(svc.slack.client.users_info)
        svc.events.on("moment", self.on_moment, name="comms.on_moment")
        svc.events.on("decided", self.on_decided, name="comms.on_decided")
        svc.events.on("decision_overdue", self.on_decision_overdue, name="comms.on_decision_overdue")
        svc.timers.on(REMINDER, self.on_update_due)

    def template(self, template_id: str) -> CommsTemplate:
        return next(t for t in self.svc.runbook.communications if t.id == template_id)

    async def on_moment(self, incident_id: str, moment: str, **_: Any) -> None:
        templates = [t for t in self.svc.runbook.communications if t.when == moment]
        source = await self._facts_source(incident_id) if templates else None
        for template in templates:
            await self.draft(incident_id, template, source)

    async def on_decided(self, incident_id: str, decision: str, **_: Any) -> None:
        if decision == "approved":
            await self.on_moment(incident_id, "decided")

    async def _facts_source(self, incident_id: str) -> tuple[history.History, datetime, str | None]:
        """One read of the store for any number of drafts of this incident."""
        now = self.svc.clock.now()
        h = await history.load(self.svc.db, self.svc.runbook, incident_id, now)
        await self.people.resolve(h.people())
        lead = next(iter(await self.svc.roles.members(h.runbook.incident_lead_roles[0], incident_id)), None)
        return h, now, await self.name(lead) if lead else None

    async def context(self, incident_id: str, template: CommsTemplate | None = None) -> dict[str, Any]:
        """The facts a template may state, computed now from the store (see `sample_context` for the shape)."""
        h, now, lead = await self._facts_source(incident_id)
        return facts(h, now, self.people, lead, template)

    async def name(self, user: str) -> str:
        """A person's real name for customer-facing text (never their id)."""
        return await self.people.name(user)

    def _text(self, source: tuple[history.History, datetime, str | None], template: CommsTemplate) -> str:
        h, now, lead = source
        context = facts(h, now, self.people, lead, template)
        text = render_template(template.body, context)
        if template.subject:
            text = f"{render_template(template.subject, context)}\n\n{text}"
        return text

    async def _render_text(self, incident_id: str, template: CommsTemplate) -> str:
        return self._text(await self._facts_source(incident_id), template)

    async def refresh_text(self, draft_id: int) -> bool:
        """Re-render a draft nobody edited from the facts as they are now (durations, data, what changed)."""
        draft, template = await self.find_draft(draft_id)
        if draft.status != "draft" or draft.edited_by:
            return False
        return await self._store_text(draft, await self._render_text(draft.incident_id, template))

    async def _store_text(self, draft: CommsDraft, text: str) -> bool:
        if text == draft.text:
            return False
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft.id, CommsDraft.status == "draft",
                col(CommsDraft.edited_by).is_(None)).values(text=text))
        return bool(result.rowcount)

    async def draft(self, incident_id: str, template: CommsTemplate,
                    source: tuple[history.History, datetime, str | None] | None = None) -> CommsDraft | None:
        now = self.svc.clock.now()
        text = self._text(source, template) if source else await self._render_text(incident_id, template)
        try:
            async with self.svc.db.session() as session:
                draft = CommsDraft(incident_id=incident_id, template_id=template.id, text=text, drafted_at=now)
                session.add(draft)
                await session.flush()
                timeline.record(session, incident_id, now, "comms_drafted", f"Draft: {template.title}",
                                template=template.id)
        except IntegrityError:  # drafted already (a moment seen twice, or a retried outbox row)
            async with self.svc.db.session() as session:
                earlier = (await session.exec(select(CommsDraft).where(
                    CommsDraft.incident_id == incident_id, CommsDraft.template_id == template.id))).first()
            if earlier is not None and await self.svc.slack.message_ref(incident_id, f"comms:{template.id}") is None:
                await self.render(earlier.id or 0)  # its post failed before: the retry posts it (keyed, once)
            return None
        await self.render(draft.id or 0)
        return draft

    async def render(self, draft_id: int, statuspage: str | None = None) -> None:
        async with self.svc.db.session() as session:
            draft = await session.get(CommsDraft, draft_id)
            assert draft is not None
            incident = await session.get(Incident, draft.incident_id)
        assert incident is not None
        template = self.template(draft.template_id)
        header = await self.svc.slack.message_ref(incident.id, "header")
        if header is None:
            return
        approver = self.svc.runbook.role(template.approver).title
        # Its own message in the channel (not a reply in the header's long thread), and a DM to the approver.
        await self.svc.slack.put_message(incident.id, f"comms:{template.id}", header.channel,
                                         draft_text(template, draft, incident.is_drill),
                                         draft_blocks(template, draft, approver, incident.is_drill, statuspage))
        if draft.status == "draft":
            await tell_deciders(self.svc, incident.id, f"comms:{draft.id}", [template.approver],
                                f"📝 {drill_prefix(incident.is_drill)}A draft for {AUDIENCE[template.audience]} "
                                f"waits for your approval: *{template.title}* in <#{header.channel}>")

    async def find_draft(self, draft_id: int) -> tuple[CommsDraft, CommsTemplate]:
        async with self.svc.db.session() as session:
            draft = await session.get(CommsDraft, draft_id)
        if draft is None:
            raise Refused("No such draft.")
        return draft, self.template(draft.template_id)

    async def approve(self, draft_id: int, user: str, version: str | None = None) -> str:
        """Approve the version of the text the approver saw (`version`, from the button): a draft edited since is
        refused, and the conditional UPDATE on the text closes the race with an edit in flight."""
        draft, template = await self.authorized("comms_approve", draft_id, user)
        self._same_version(draft, version)
        # The wording approved is the one seen; its figures (durations, data) are refreshed to approval time.
        if await self.refresh_text(draft_id):
            draft, _ = await self.find_draft(draft_id)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, CommsDraft.status == "draft", CommsDraft.text == draft.text).values(
                    status="approved", approved_by=user, approved_at=now))
            if result.rowcount != 1:
                raise Refused("That draft is no longer waiting for approval, or its text changed.")
            timeline.record(session, draft.incident_id, now, "comms_approved", f"Approved: {template.title}",
                            actor=user, template=template.id, version=text_version(draft.text))
        note = await self.publish_status_page(draft_id) if template.audience == "status_page" else None
        await self.render(draft_id, note)
        return "approved"

    async def authorized(self, interaction: str, draft_id: int, user: str,
                         acting: bool = True) -> tuple[CommsDraft, CommsTemplate]:
        draft, template = await self.find_draft(draft_id)
        await authz.require(self.svc, interaction, user, authz.Subject(draft.incident_id,
                                                                       template_role=template.approver), acting=acting)
        return draft, template

    @staticmethod
    def _same_version(draft: CommsDraft, version: str | None) -> None:
        if version is not None and version != text_version(draft.text):
            raise Refused("The draft changed since that message was shown: read the new text first.")

    async def edit(self, draft_id: int, user: str, text: str, version: str | None = None) -> None:
        """Edit a draft or an approved (unsent) one; an approved draft goes back for approval."""
        draft, template = await self.authorized("comms_edit", draft_id, user)
        if not text.strip():
            raise Refused("The text cannot be empty.")
        self._same_version(draft, version)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, col(CommsDraft.status).in_(("draft", "approved")),
                CommsDraft.text == draft.text).values(text=text.strip(), edited_by=user, status="draft",
                                                      approved_by=None, approved_at=None))
            if result.rowcount != 1:
                raise Refused("Only an unsent draft can be edited, and its text changed meanwhile or it was sent.")
            again = " (its approval is withdrawn: it needs approving again)" if draft.status == "approved" else ""
            timeline.record(session, draft.incident_id, now, "comms_edited", f"Edited: {template.title}{again}",
                            actor=user, template=template.id, version=text_version(text.strip()))
        await self.render(draft_id)

    async def approve_and_send(self, draft_id: int, user: str, version: str | None = None) -> None:
        """The approver sends the text themselves, now: approved (the version they saw) and marked sent by them,
        two timeline events from one click. The sent text is the approved one (figures refreshed at approval)."""
        await self.approve(draft_id, user, version)
        await self.mark_sent(draft_id, user)

    async def mark_sent(self, draft_id: int, user: str, version: str | None = None) -> None:
        draft, template = await self.authorized("comms_sent", draft_id, user)
        self._same_version(draft, version)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, CommsDraft.status == "approved", CommsDraft.text == draft.text).values(
                    status="sent", sent_by=user, sent_at=now))
            if result.rowcount != 1:
                raise Refused("Only an approved draft can be marked as sent.")
            timeline.record(session, draft.incident_id, now, "comms_sent", f"Sent: {template.title}", actor=user,
                            template=template.id, version=text_version(draft.text))
            await self._promise(session, draft.incident_id, template, now)
            sent = await self.svc.events.emit("comms_sent", session, change=str(draft_id),
                                              incident_id=draft.incident_id, draft_id=draft_id)
        await self.render(draft_id)
        await self.svc.events.deliver(sent)

    async def publish_status_page(self, draft_id: int) -> str:
        """Post an approved update to Atlassian Statuspage when configured; say what happened either way.

        One page incident per incident: the first update creates it (its id kept on the incident), later ones
        update it (identified, monitoring) and the last resolves it. Each draft is posted once."""
        settings = self.svc.settings
        if not (settings.statuspage_api_key and settings.statuspage_page_id):
            return "Statuspage is not configured: copy this text to your status page."
        draft, template = await self.find_draft(draft_id)
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, draft.incident_id)
        assert incident is not None
        if not await drill_guard.reaches_outside(self.svc, incident, "statuspage", f"the update “{template.title}”"):
            return "Drill: not posted to Statuspage (a drill never reaches the outside world)."
        name, _, body = draft.text.partition("\n\n")
        base = f"{settings.statuspage_api_url.rstrip('/')}/pages/{settings.statuspage_page_id}/incidents"
        auth = {"Authorization": f"OAuth {settings.statuspage_api_key.get_secret_value()}"}
        async with self.svc.coord.lock(f"statuspage:{draft.incident_id}", ttl=30):
            incident = await self.svc.incident(draft.incident_id)
            page_incident = incident.data.get("statuspage_incident_id")
            if template.id in incident.data.get("statuspage_posted", []):
                return "Already on Statuspage."
            status = template.statuspage_status or ("investigating" if page_incident is None else "identified")
            current = incident.data.get("statuspage_status")
            if current in PAGE_STATUSES and PAGE_STATUSES.index(current) > PAGE_STATUSES.index(status):
                status = current  # an older draft approved late adds its text but never moves the page back
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    if page_incident is None:
                        response = await client.post(base, headers=auth, json={"incident": {
                            "name": name[:255], "status": status, "body": body or name}})
                    else:
                        response = await client.patch(f"{base}/{page_incident}", headers=auth, json={"incident": {
                            "status": status, "body": body or name}})
                response.raise_for_status()
                page_incident = page_incident or str(response.json()["id"])
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                log.warning("statuspage update failed: %s", exc)
                return f"Statuspage did not take it ({type(exc).__name__}): post it by hand."
            now = self.svc.clock.now()
            async with self.svc.db.session() as session:
                row = await session.get(Incident, draft.incident_id, with_for_update=True)
                assert row is not None
                row.data = {**row.data, "statuspage_incident_id": page_incident, "statuspage_status": status,
                            "statuspage_posted": [*row.data.get("statuspage_posted", []), template.id]}
                session.add(row)
                timeline.record(session, draft.incident_id, now, "statuspage_posted",
                                f"Status page set to {status}: {name[:200]}", template=template.id, status=status)
                await self._promise(session, draft.incident_id, template, now)
        return f"Posted to Statuspage ({status})."

    async def _promise(self, session: Any, incident_id: str, template: CommsTemplate, now: datetime) -> None:
        """A status-page update replaces the promise of the last one; its own promise becomes a reminder."""
        if template.audience != "status_page":
            return
        key = f"{incident_id}:{REMINDER}:{template.id}"
        await session.exec(update(Timer).where(  # type: ignore[call-overload]
            Timer.incident_id == incident_id, Timer.kind == REMINDER, Timer.status == "pending",
            Timer.key != key).values(status="cancelled"))
        if template.next_update_minutes:  # posted and then marked sent: the one reminder, kept (same key)
            await timers.schedule(session, key=key, kind=REMINDER,
                                  due_at=now + timedelta(minutes=template.next_update_minutes),
                                  incident_id=incident_id, payload={"template": template.id})

    async def on_decision_overdue(self, incident_id: str, **_: Any) -> None:
        """The escalation is pulled forward: so is the promised customer update (customers wait on the same)."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.incident_id == incident_id, Timer.kind == REMINDER, Timer.status == "pending",
                Timer.due_at > now).values(due_at=now))

    async def on_update_due(self, timer: Timer) -> None:
        """The promised status-page update is due: remind the approver (DM and the incident thread)."""
        template = self.template(timer.payload["template"])
        incident = await self.svc.incident(timer.incident_id or "")
        if incident.status != "open":
            return
        zone = self.svc.runbook.comms.timezone
        waiting = await self._waiting_status_page(incident.id)
        text = (f"⏰ {drill_prefix(incident.is_drill)}The status page promised customers an update by "
                f"{time_of(timer.due_at, zone)} ({template.title}). "
                + (f"The draft *{waiting.title}* is waiting for your approval in the incident channel."
                   if waiting else "Post a new update to the status page now."))
        header = await self.svc.slack.message_ref(incident.id, "header")
        if header:
            await self.svc.slack.put_message(incident.id, f"reminder:{timer.key}", header.channel, text,
                                             thread_ts=header.ts)
        for user in (await self.svc.roles.members(template.approver, incident.id))[:5]:
            await self.svc.slack.dm(user, text, key=f"{timer.key}:{user}")  # a retried reminder DMs nobody twice
        async with self.svc.db.session() as session:
            timeline.record(session, incident.id, self.svc.clock.now(), "comms_update_due",
                            f"Status page update due: {template.title}", template=template.id)

    async def _waiting_status_page(self, incident_id: str) -> CommsTemplate | None:
        async with self.svc.db.session() as session:
            drafts = (await session.exec(select(CommsDraft).where(
                CommsDraft.incident_id == incident_id, CommsDraft.status == "draft"))).all()
        return next((self.template(d.template_id) for d in drafts
                     if self.template(d.template_id).audience == "status_page"), None)
