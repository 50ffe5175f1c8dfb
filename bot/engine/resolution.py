"""Validation, resolution and what follows it: the validation checklists when the last phase starts, `/rollback
resolve` (by an incident lead, once validation is complete or with a stated override), the summary against the
runbook's targets, the report uploaded to the channel, and the follow-ups as durable reminders."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlmodel import col, select

from bot.engine import timeline, timers
from bot.engine.checklists import Refused, apply_selection
from bot.engine.procedure import procedure_for
from bot.engine.report import compute_metrics, load, write_report
from bot.engine.services import Services
from bot.engine.warroom import WarRoom
from bot.store.models import ChecklistItemState, Incident, Timer
from bot.views.common import drill_prefix, mentions
from bot.views.validation import validation_blocks, validation_step_id, validation_text

log = logging.getLogger(__name__)
FOLLOW_UP = timers.AFTER_CLOSE[0]


class Resolution:
    def __init__(self, svc: Services, warroom: WarRoom) -> None:
        self.svc = svc
        self.warroom = warroom
        svc.events.on("phase_started", self._on_phase_started)
        svc.timers.on(FOLLOW_UP, self.on_follow_up)

    # --- validation ------------------------------------------------------------------------------------

    async def _on_phase_started(self, incident_id: str, phase_id: str | None = None, **_: Any) -> None:
        incident = await self._incident(incident_id)
        phases = procedure_for(self.svc.runbook, incident.scenario_id).phases
        if phase_id == phases[-1].id:  # Phase 4 (validation and recovery) has ended
            await self.post_validation(incident_id)

    async def post_validation(self, incident_id: str) -> None:
        incident = await self._incident(incident_id)
        ticked = await self._ticked(incident_id)
        for checklist in self.svc.runbook.validation:
            await self.svc.slack.put_message(
                incident_id, f"validation:{checklist.id}", incident.channel_id or "",
                validation_text(checklist, incident.is_drill),
                validation_blocks(checklist, ticked.get(checklist.id, set()), incident.status == "open"))

    async def _ticked(self, incident_id: str) -> dict[str, set[str]]:
        async with self.svc.db.session() as session:
            rows = (await session.exec(select(ChecklistItemState).where(
                ChecklistItemState.incident_id == incident_id, ChecklistItemState.checked == True,  # noqa: E712
                col(ChecklistItemState.step_id).startswith("validation:")))).all()
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row.step_id.split(":", 1)[1], set()).add(row.item_id)
        return found

    async def tick(self, incident_id: str, checklist_id: str, selected: set[str], chunk_values: set[str],
                   user: str) -> None:
        """Apply one checkbox element's selection (the values it shows are `chunk_values`)."""
        checklist = next((c for c in self.svc.runbook.validation if c.id == checklist_id), None)
        allowed = {f"{checklist_id}.{i + 1}" for i in range(len(checklist.items))} if checklist else set()
        if checklist is None or not selected <= allowed or not chunk_values <= allowed:
            raise Refused("That validation item is not part of this runbook.")
        incident = await self._incident(incident_id)
        if incident.status != "open":
            raise Refused("The incident is closed.")
        now = self.svc.clock.now()
        step_id = validation_step_id(checklist_id)
        async with self.svc.db.session() as session:
            for value, want in await apply_selection(session, incident_id, step_id, chunk_values, selected, user, now):
                label = checklist.items[int(value.rsplit(".", 1)[1]) - 1].label
                timeline.record(session, incident_id, now, "validated" if want else "unvalidated",
                                f"{checklist.title}: {'☑' if want else '☐'} {label}", actor=user, item=value)
        await self.post_validation(incident_id)

    async def validation_complete(self, incident_id: str) -> bool:
        ticked = await self._ticked(incident_id)
        return all(len(ticked.get(c.id, set())) == len(c.items) for c in self.svc.runbook.validation)

    # --- resolving -------------------------------------------------------------------------------------

    async def check_may_resolve(self, incident_id: str, user: str, override: str | None) -> None:
        runbook = self.svc.runbook
        if not await self.svc.roles.roles_of(user, list(runbook.incident_lead_roles), incident_id):
            titles = " or ".join(runbook.role(r).title for r in runbook.incident_lead_roles)
            raise Refused(f"Only the {titles} can resolve the incident.")
        if (await self._incident(incident_id)).status != "open":
            raise Refused("The incident is already closed.")
        if not override and not await self.validation_complete(incident_id):
            raise Refused("The validation checklists are not complete. Finish them, or resolve with "
                          '`/rollback resolve --override "why"`.')

    async def resolve(self, incident_id: str, user: str, override: str | None = None) -> None:
        await self.check_may_resolve(incident_id, user, override)
        runbook = self.svc.runbook
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            result = await session.exec(update(Incident).where(  # type: ignore[call-overload]
                Incident.id == incident_id, Incident.status == "open").values(
                    status="resolved", stage="resolved", resolved_at=now, resolved_by=user, dedup_key=None))
            if result.rowcount != 1:
                raise Refused("The incident is already closed.")
            timeline.record(session, incident_id, now, "resolved",
                            "Incident resolved" + (f" with an override: {override}" if override else ""), actor=user)
            await timers.cancel(session, incident_id, except_kinds=timers.AFTER_CLOSE)
            for follow in runbook.follow_ups:
                await timers.schedule(session, key=f"{incident_id}:{FOLLOW_UP}:{follow.id}", kind=FOLLOW_UP,
                                      due_at=now + timedelta(minutes=follow.within_minutes), incident_id=incident_id,
                                      payload={"follow_up": follow.id})
        await self.svc.events.emit("closed", incident_id=incident_id)
        await self.svc.events.emit("moment", incident_id=incident_id, moment="resolved")
        await self.warroom.refresh(incident_id)
        await self.post_validation(incident_id)
        await self.post_summary(incident_id)
        await self.upload_report(incident_id)

    async def post_summary(self, incident_id: str) -> None:
        runbook = self.svc.runbook
        incident, steps, executions, comms, _events, _votes = await load(self.svc.db, incident_id)
        m = compute_metrics(runbook, incident, steps, executions, comms)
        rto = runbook.objectives.rto_minutes
        lines = [f"🏁 *{drill_prefix(incident.is_drill)}Resolved* by <@{incident.resolved_by}>",
                 f"• Rollback: {f'{m.rollback_minutes:g} min' if m.rollback_minutes is not None else 'not completed'}"
                 f" from decision to completion (target {rto:g} min)",
                 f"• Decision: {f'{m.decision_minutes:g} min' if m.decision_minutes is not None else 'none'}"
                 f" (deadline {m.decision_deadline:g} min)",
                 f"• Data restored from backup: {'yes (data loss since the restore point)' if m.data_restored else 'no'}",
                 f"• Steps finished after their window: {len(m.overdue_steps)}"]
        lines += ["*Success metrics*"] + [
            f"{'✅' if s.met else ('❌' if s.met is False else '➖')} {s.label}: {s.value} (target {s.target})"
            for s in m.success]
        header = await self.svc.slack.message_ref(incident_id, "header")
        if header:
            await self.svc.slack.put_message(incident_id, "resolution", header.channel, "\n".join(lines))

    async def upload_report(self, incident_id: str) -> str:
        report = await write_report(self.svc.db, self.svc.runbook, incident_id)
        incident = await self._incident(incident_id)
        if incident.channel_id:
            try:
                await self.svc.slack.client.files_upload_v2(
                    channel=incident.channel_id, content=report, filename=f"{incident_id}-report.md",
                    title=f"Post-incident report {incident_id}", initial_comment="📄 The post-incident report")
            except SlackApiError as exc:
                log.warning("report upload failed: %s", exc.response.get("error"))
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), "report_written", "Post-incident report written")
        return report

    async def on_follow_up(self, timer: Timer) -> None:
        follow = next(f for f in self.svc.runbook.follow_ups if f.id == timer.payload["follow_up"])
        incident = await self._incident(timer.incident_id or "")
        owners = await self.svc.roles.members(follow.owner, incident.id)
        items = "\n".join(f"*{g.title}*\n" + "\n".join(f"☐ {i}" for i in g.items) for g in follow.groups)
        text = (f"⏰ {drill_prefix(incident.is_drill)}Follow-up due: *{follow.title}* for {incident.id} "
                f"({self.svc.runbook.role(follow.owner).title}: {mentions(owners)})\n{items}")
        header = await self.svc.slack.message_ref(incident.id, "header")
        if header:
            await self.svc.slack.reply(header.channel, header.ts, text[:3900])
        for user in owners[:5]:
            await self.svc.slack.dm(user, text[:3900])
        async with self.svc.db.session() as session:
            timeline.record(session, incident.id, self.svc.clock.now(), "follow_up_due", f"Follow-up due: {follow.title}",
                            follow_up=follow.id)

    async def _incident(self, incident_id: str) -> Incident:
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None:
            raise Refused("No such incident.")
        return incident
