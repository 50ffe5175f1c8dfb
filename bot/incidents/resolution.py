"""Validation, resolution and what follows it: the validation checklists when the last phase starts, `/rollback
resolve` (by an incident lead, once validation is complete or with a stated override), the summary against the
runbook's targets, the report uploaded to the channel, and the follow-ups as durable reminders."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from sqlalchemy import update
from sqlmodel import col, select

from bot.core import authz, timeline, timers
from bot.core.errors import Refused
from bot.core.people import People
from bot.core.services import Services
from bot.incidents.warroom import WarRoom
from bot.reports import history
from bot.reports.report import write_report
from bot.runbook.model import ValidationChecklist
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import drill_prefix, escape, mentions
from bot.slack.queue import Priority
from bot.steps.checklists import apply_selection
from bot.steps.validation_view import validation_blocks, validation_step_id, validation_text
from bot.store.models import ChecklistItemState, Execution, Incident, Timer

log = logging.getLogger(__name__)
FOLLOW_UP = timers.AFTER_CLOSE[0]


class Resolution:
    def __init__(self, svc: Services, warroom: WarRoom) -> None:
        self.svc = svc
        self.warroom = warroom
        svc.events.on("execution_finished", self._on_execution_finished, name="resolution.on_execution_finished")
        svc.events.on("phase_started", self._on_phase_started, name="resolution.on_phase_started")
        svc.events.on("comms_sent", self._on_comms_sent, name="resolution.on_comms_sent")
        svc.timers.on(FOLLOW_UP, self.on_follow_up)

    # --- validation ------------------------------------------------------------------------------------

    async def _on_phase_started(self, incident_id: str, phase_id: str | None = None, **_: Any) -> None:
        incident = await self.svc.incident(incident_id)
        phases = procedure_for(self.svc.runbook, incident.scenario_id).phases
        if phase_id == phases[-1].id:  # Phase 4 (validation and recovery) has ended
            await self.post_validation(incident_id)

    async def _on_execution_finished(self, incident_id: str, outcome: str | None = None, **_: Any) -> None:
        """A run that succeeds once the validation lists are up may prove some of their items."""
        checklists = self.svc.runbook.validation
        if outcome == "succeeded" and checklists and \
                await self.svc.slack.message_ref(incident_id, f"validation:{checklists[0].id}") is not None:
            await self.post_validation(incident_id)

    async def post_validation(self, incident_id: str, only: str | None = None,
                              priority: Priority | None = None) -> None:
        """Post or re-render the validation checklists (`only`: just that one, the one a person ticked)."""
        incident = await self.svc.incident(incident_id)
        if incident.status == "open":
            await self._tick_proven(incident)
        ticked = await self._ticked(incident_id)
        for checklist in self.svc.runbook.validation:
            if only is not None and checklist.id != only:
                continue
            await self.svc.slack.put_message(
                incident_id, f"validation:{checklist.id}", incident.channel_id or "",
                validation_text(checklist, incident.is_drill),
                validation_blocks(checklist, ticked.get(checklist.id, set()), incident.status == "open"),
                priority=priority)

    async def _proofs(self, incident: Incident) -> dict[str, Execution]:
        """Action id -> its first success since the rollback started (a traffic run's success also proves its
        per-stage check and the metric gates it measured); a dry run proves something only in a drill."""
        since = incident.rollback_started_at or incident.decided_at or incident.declared_at
        async with self.svc.db.session() as session:
            runs = (await session.exec(select(Execution).where(
                Execution.incident_id == incident.id, Execution.state == "succeeded").order_by(
                    col(Execution.finished_at)))).all()
        proofs: dict[str, Execution] = {}
        for run in runs:
            if run.finished_at is None or run.finished_at < since or (run.dry_run and not incident.is_drill):
                continue
            proofs.setdefault(run.action_id, run)
            check = next((a.check for a in self.svc.runbook.actions if a.id == run.action_id), None)
            if check:
                proofs.setdefault(check, run)
            for gate in (run.data or {}).get("stage_gates", []):  # the metric gates every stage passed
                proofs.setdefault(gate, run)
        return proofs

    async def _tick_proven(self, incident: Incident) -> None:
        """Tick the validation items a successful run proves, by the bot, once: an item anyone has ticked or
        unticked already is theirs, never overridden."""
        if not any(i.proven_by for c in self.svc.runbook.validation for i in c.items):
            return
        async with self.svc.coord.lock(f"validation-proofs:{incident.id}"):
            await self._tick_proven_locked(incident)

    async def _tick_proven_locked(self, incident: Incident) -> None:
        proofs = await self._proofs(incident)
        now, bot = self.svc.clock.now(), self.svc.slack.bot_user_id or "rollbot"
        async with self.svc.db.session() as session:
            touched = {(r.step_id, r.item_id) for r in (await session.exec(select(ChecklistItemState).where(
                ChecklistItemState.incident_id == incident.id,
                col(ChecklistItemState.step_id).startswith("validation:")))).all()}
            for checklist in self.svc.runbook.validation:
                step_id = validation_step_id(checklist.id)
                for n, item in enumerate(checklist.items, start=1):
                    run = next((proofs[a] for a in item.proven_by if a in proofs), None)
                    value = f"{checklist.id}.{n}"
                    if run is None or (step_id, value) in touched:
                        continue
                    session.add(ChecklistItemState(incident_id=incident.id, step_id=step_id, item_id=value,
                                                   checked=True, by=bot, at=now))
                    title = self.svc.runbook.action(run.action_id).title
                    timeline.record(session, incident.id, now, "validated",
                                    f"{checklist.title}: ☑ {item.label} — proven by “{title}”, which succeeded",
                                    actor=bot, item=value, execution=run.id)

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
                   user: str, interaction: str = "validation_tick") -> None:
        """Apply one checkbox element's selection (the values it shows are `chunk_values`)."""
        checklist = next((c for c in self.svc.runbook.validation if c.id == checklist_id), None)
        allowed = self._values(checklist) if checklist else set()
        if checklist is None or not selected <= allowed or not chunk_values <= allowed:
            raise Refused("That validation item is not part of this runbook.")
        await authz.require(self.svc, interaction, user, authz.Subject(
            incident_id, validation_owner=checklist.owner))
        incident = await self.svc.incident(incident_id)
        if incident.status != "open":
            raise Refused("The incident is closed.")
        now = self.svc.clock.now()
        step_id = validation_step_id(checklist_id)
        async with self.svc.db.session() as session:
            for value, want in await apply_selection(session, incident_id, step_id, chunk_values, selected, user, now):
                label = checklist.items[int(value.rsplit(".", 1)[1]) - 1].label
                timeline.record(session, incident_id, now, "validated" if want else "unvalidated",
                                f"{checklist.title}: {'☑' if want else '☐'} {label}", actor=user, item=value)
        # Only the list ticked changed; the person who ticked it waits for it (one chat.update, not one per list).
        await self.post_validation(incident_id, only=checklist_id, priority=Priority.URGENT)

    async def confirm_all(self, incident_id: str, checklist_id: str, user: str) -> None:
        """Tick every item of one validation list still unticked (its owner's "All confirmed")."""
        checklist = next((c for c in self.svc.runbook.validation if c.id == checklist_id), None)
        values = self._values(checklist) if checklist else set()  # (tick refuses a list the runbook has not)
        await self.tick(incident_id, checklist_id, values, values, user, interaction="validation_all")

    @staticmethod
    def _values(checklist: ValidationChecklist) -> set[str]:
        return {f"{checklist.id}.{i + 1}" for i in range(len(checklist.items))}

    async def validation_complete(self, incident_id: str) -> bool:
        ticked = await self._ticked(incident_id)
        return all(len(ticked.get(c.id, set())) == len(c.items) for c in self.svc.runbook.validation)

    # --- resolving -------------------------------------------------------------------------------------

    async def check_may_resolve(self, incident_id: str, user: str, override: str | None) -> None:
        await authz.require(self.svc, "/rollback resolve", user, authz.Subject(incident_id))
        if (await self.svc.incident(incident_id)).status != "open":
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
                            "Incident resolved" + (f" with an override: {escape(override)}" if override else ""), actor=user)
            await timers.cancel(session, incident_id, except_kinds=timers.AFTER_CLOSE)
            for follow in runbook.follow_ups:
                await timers.schedule(session, key=f"{incident_id}:{FOLLOW_UP}:{follow.id}", kind=FOLLOW_UP,
                                      due_at=now + timedelta(minutes=follow.within_minutes), incident_id=incident_id,
                                      payload={"follow_up": follow.id})
            out = [await self.svc.events.emit("closed", session, change=incident_id, incident_id=incident_id),
                   await self.svc.events.emit("moment", session, change=f"{incident_id}:resolved",
                                              incident_id=incident_id, moment="resolved")]
        await self.svc.events.deliver(*out)
        await self.warroom.refresh(incident_id)
        await self.post_validation(incident_id)
        await self.post_summary(incident_id)
        await self.upload_report(incident_id)

    async def post_summary(self, incident_id: str) -> None:
        runbook = self.svc.runbook
        h = await history.load(self.svc.db, runbook, incident_id, self.svc.clock.now())
        decide, mitigate = h.timing("Time to decide"), h.timing("Time to mitigate")
        lines = [f"🏁 *{drill_prefix(h.incident.is_drill)}Resolved* by <@{h.incident.resolved_by}>",
                 f"• Rollback: {f'{mitigate.minutes:g} min' if mitigate.minutes is not None else 'not completed'}"
                 f" from decision to completion (target {runbook.objectives.rto_minutes:g} min)",
                 f"• Decision: {f'{decide.minutes:g} min' if decide.minutes is not None else 'none'}"
                 f" (deadline {decide.target_minutes:g} min)",
                 f"• Data restored from backup: {'yes (data loss since the restore point)' if h.data.restored else 'no'}",
                 f"• Steps finished after their window: {len(h.plan.late)}"]
        lines += ["*Success metrics*"] + [
            f"{'✅' if s.met else ('❌' if s.met is False else '➖')} {s.label}: {s.value} (target {s.target})"
            for s in h.success]
        header = await self.svc.slack.message_ref(incident_id, "header")
        if header:
            await self.svc.slack.put_message(incident_id, "resolution", header.channel, "\n".join(lines))

    async def report(self, incident_id: str, fmt: Literal["md", "json"] = "md") -> str:
        """The report now: names from Slack, roles from the roster and this incident's overrides."""
        runbook = self.svc.runbook
        holders = await self.svc.roles.holders([r.id for r in runbook.roles], incident_id)
        return await write_report(self.svc.db, runbook, incident_id, self.svc.clock.now(),
                                  People(self.svc.slack.client.users_info), holders, fmt)

    async def upload_report(self, incident_id: str) -> str:
        """Upload the report unless this very text was uploaded already (a re-run, or nothing changed)."""
        report = await self.report(incident_id)
        digest = hashlib.sha256(report.encode()).hexdigest()
        incident = await self.svc.incident(incident_id)
        if incident.data.get("report_sha256") == digest:
            return report
        report_url = incident.data.get("report_url")
        if incident.channel_id:
            try:
                uploaded = await self.svc.slack.client.files_upload_v2(
                    channel=incident.channel_id, content=report, filename=f"{incident_id}-report.md",
                    title=f"Post-incident report {incident_id}", initial_comment=(
                        "📄 The post-incident report" if "report_sha256" not in incident.data
                        else "📄 The post-incident report, updated"))
            except SlackApiError as exc:
                log.warning("report upload failed: %s", exc.response.get("error"))
                return report
            files = uploaded.get("files") or [uploaded.get("file") or {}]
            report_url = (files[0] if files else {}).get("permalink") or report_url
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id, with_for_update=True)
            assert row is not None
            row.data = {**row.data, "report_sha256": digest, "report_url": report_url}
            session.add(row)
            timeline.record(session, incident_id, self.svc.clock.now(), "report_written", "Post-incident report written")
        await self.warroom.dressing.sync(incident_id)  # the report's bookmark
        return report

    async def _on_comms_sent(self, incident_id: str, **_: Any) -> None:
        """A communication sent after resolution (the apology) changes the report: write it again."""
        if (await self.svc.incident(incident_id)).status == "resolved":
            await self.upload_report(incident_id)

    async def on_follow_up(self, timer: Timer) -> None:
        follow = next(f for f in self.svc.runbook.follow_ups if f.id == timer.payload["follow_up"])
        incident = await self.svc.incident(timer.incident_id or "")
        owners = await self.svc.roles.members(follow.owner, incident.id)
        items = "\n".join(f"*{g.title}*\n" + "\n".join(f"☐ {i}" for i in g.items) for g in follow.groups)
        text = (f"⏰ {drill_prefix(incident.is_drill)}Follow-up due: *{follow.title}* for {incident.id} "
                f"({self.svc.runbook.role(follow.owner).title}: {mentions(owners)})\n{items}")
        header = await self.svc.slack.message_ref(incident.id, "header")
        if header:  # keyed: a retried timer posts and DMs nothing twice
            await self.svc.slack.put_message(incident.id, f"follow_up:{timer.key}", header.channel, text[:3900],
                                             thread_ts=header.ts)
        for user in owners[:5]:
            await self.svc.slack.dm(user, text[:3900], key=f"{timer.key}:{user}")
        async with self.svc.db.session() as session:
            timeline.record(session, incident.id, self.svc.clock.now(), "follow_up_due", f"Follow-up due: {follow.title}",
                            follow_up=follow.id)
