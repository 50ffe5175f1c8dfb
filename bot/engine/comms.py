"""Customer and stakeholder communications: drafts from the runbook's templates at the moments the runbook names,
approved by the template's approver role, edited and marked as sent, every move on the timeline. An approved
status-page update goes to Atlassian Statuspage when it is configured; otherwise it stays a draft to copy."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.engine import timeline
from bot.engine.checklists import Refused
from bot.engine.services import Services
from bot.runbook.model import CommsTemplate
from bot.runbook.templating import render_template
from bot.store.models import ApprovalRequest, CommsDraft, Incident, Vote
from bot.views.comms import draft_blocks, draft_text

log = logging.getLogger(__name__)


class Comms:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._names: dict[str, str] = {}
        svc.events.on("moment", self.on_moment)

    def template(self, template_id: str) -> CommsTemplate:
        return next(t for t in self.svc.runbook.communications if t.id == template_id)

    async def on_moment(self, incident_id: str, moment: str, **_: Any) -> None:
        for template in self.svc.runbook.communications:
            if template.when == moment:
                await self.draft(incident_id, template)

    async def context(self, incident_id: str) -> dict[str, Any]:
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        inc, runbook = snap.incident, snap.runbook
        async with self.svc.db.session() as session:
            approvers = (await session.exec(select(Vote.user_id).join(
                ApprovalRequest, col(ApprovalRequest.id) == Vote.request_id).where(
                Vote.vote == "approve", ApprovalRequest.incident_id == incident_id,
                ApprovalRequest.subject == "rollback"))).all()
        phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
        lead = next(iter(await self.svc.roles.members(runbook.incident_lead_roles[0], incident_id)), None)
        completed = inc.rollback_completed_at
        return {
            "service": {"name": runbook.title.split(" ")[0] if runbook.title else runbook.name},
            "incident": {
                "id": inc.id, "title": inc.title, "level": inc.level, "level_title": runbook.level(inc.level).title,
                "scenario": snap.procedure.scenario.title if snap.procedure.scenario else None,
                "trigger": runbook.trigger(inc.trigger_id).title if inc.trigger_id else None,
                "phase": phase.title if phase else "", "started_at": inc.declared_at.strftime("%Y-%m-%d %H:%M UTC"),
                "elapsed_minutes": round(snap.elapsed_seconds / 60), "channel_name": inc.channel_name or "",
                "lead": await self.name(lead) if lead else "the incident lead", "is_drill": inc.is_drill,
            },
            "decision": {"approvers": [await self.name(u) for u in dict.fromkeys(approvers)],
                         "decided_at": inc.decided_at.strftime("%Y-%m-%d %H:%M UTC") if inc.decided_at else None},
            "rollback": {
                "version": inc.version,
                "completed_at": completed.strftime("%Y-%m-%d %H:%M UTC") if completed else None,
                "duration_minutes": round((completed - inc.decided_at).total_seconds() / 60)
                if completed and inc.decided_at else None,
            },
        }

    async def name(self, user: str) -> str:
        """A person's real name for customer-facing text (never their id)."""
        if user not in self._names:
            try:
                info = await self.svc.slack.client.users_info(user=user)
                self._names[user] = info["user"].get("real_name") or info["user"]["name"]
            except SlackApiError:
                self._names[user] = "our team"
        return self._names[user]

    async def draft(self, incident_id: str, template: CommsTemplate) -> CommsDraft | None:
        now = self.svc.clock.now()
        text = render_template(template.body, await self.context(incident_id))
        if template.subject:
            text = f"{render_template(template.subject, await self.context(incident_id))}\n\n{text}"
        try:
            async with self.svc.db.session() as session:
                draft = CommsDraft(incident_id=incident_id, template_id=template.id, text=text, drafted_at=now)
                session.add(draft)
                await session.flush()
                timeline.record(session, incident_id, now, "comms_drafted", f"Draft: {template.title}",
                                template=template.id)
        except IntegrityError:
            return None  # drafted already (a moment seen twice)
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
        await self.svc.slack.put_message(incident.id, f"comms:{template.id}", header.channel,
                                         draft_text(template, draft, incident.is_drill),
                                         draft_blocks(template, draft, approver, incident.is_drill, statuspage),
                                         thread_ts=header.ts)

    async def _get(self, draft_id: int) -> tuple[CommsDraft, CommsTemplate]:
        async with self.svc.db.session() as session:
            draft = await session.get(CommsDraft, draft_id)
        if draft is None:
            raise Refused("No such draft.")
        return draft, self.template(draft.template_id)

    async def approve(self, draft_id: int, user: str) -> str:
        draft, template = await self._get(draft_id)
        if not await self.svc.roles.roles_of(user, [template.approver], draft.incident_id):
            holders = await self.svc.roles.members(template.approver, draft.incident_id)
            raise Refused(f"Only the {self.svc.runbook.role(template.approver).title} approves this "
                          f"({', '.join(f'<@{u}>' for u in holders) or 'nobody on the roster'}).")
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, CommsDraft.status == "draft").values(
                    status="approved", approved_by=user, approved_at=now))
            if result.rowcount != 1:
                raise Refused("That draft is no longer waiting for approval.")
            timeline.record(session, draft.incident_id, now, "comms_approved", f"Approved: {template.title}",
                            actor=user, template=template.id)
        note = await self.publish_status_page(draft_id) if template.audience == "status_page" else None
        await self.render(draft_id, note)
        return "approved"

    async def edit(self, draft_id: int, user: str, text: str) -> None:
        draft, template = await self._get(draft_id)
        if not text.strip():
            raise Refused("The text cannot be empty.")
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, CommsDraft.status == "draft").values(text=text.strip(), edited_by=user))
            if result.rowcount != 1:
                raise Refused("Only a draft can be edited; this one is already approved.")
            timeline.record(session, draft.incident_id, now, "comms_edited", f"Edited: {template.title}", actor=user)
        await self.render(draft_id)

    async def mark_sent(self, draft_id: int, user: str) -> None:
        draft, template = await self._get(draft_id)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(CommsDraft).where(  # type: ignore[call-overload]
                CommsDraft.id == draft_id, CommsDraft.status == "approved").values(
                    status="sent", sent_by=user, sent_at=now))
            if result.rowcount != 1:
                raise Refused("Only an approved draft can be marked as sent.")
            timeline.record(session, draft.incident_id, now, "comms_sent", f"Sent: {template.title}", actor=user,
                            template=template.id)
        await self.render(draft_id)

    async def publish_status_page(self, draft_id: int) -> str:
        """Post an approved update to Atlassian Statuspage when configured; say what happened either way."""
        settings = self.svc.settings
        if not (settings.statuspage_api_key and settings.statuspage_page_id):
            return "Statuspage is not configured: copy this text to your status page."
        draft, template = await self._get(draft_id)
        name, _, body = draft.text.partition("\n\n")
        url = f"{settings.statuspage_api_url.rstrip('/')}/pages/{settings.statuspage_page_id}/incidents"
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(url, headers={
                    "Authorization": f"OAuth {settings.statuspage_api_key.get_secret_value()}"},
                    json={"incident": {"name": name[:255], "status": "investigating", "body": body or name}})
            response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("statuspage update failed: %s", exc)
            return f"Statuspage did not take it ({type(exc).__name__}): post it by hand."
        async with self.svc.db.session() as session:
            timeline.record(session, draft.incident_id, self.svc.clock.now(), "statuspage_posted",
                            f"Posted to Statuspage: {name[:200]}", template=template.id)
        return "Posted to Statuspage."
