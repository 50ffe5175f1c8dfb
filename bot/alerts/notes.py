"""After the webhook's answer: the incident's alert changes written to the timeline in batches, the header
re-rendered once per batch, and — when every alert of the incident has resolved — one thread post with the
incident lead's buttons (move to validation, resolve).

The intake owes each change an `alert_notes` timer in the alert's own transaction; whichever of an incident's
timers fires first writes every pending line (row-locked), the rest find nothing to do. The thread post is its
own timer (`alerts_all_resolved`, keyed by the resolution that completed the set), so a Slack failure retries the
post, never the lines.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from bot.alerts.intake import NOTES_TIMER
from bot.alerts.views import all_resolved_blocks, all_resolved_text, change_line
from bot.core import authz, timeline, timers
from bot.core.room import Room
from bot.core.services import Services
from bot.incidents.resolution import Resolution
from bot.runbook.procedure import procedure_for
from bot.steps.checklists import Checklists
from bot.store.models import Incident, IncidentAlert, ReceivedAlert, Timer

ALL_RESOLVED_TIMER = "alerts_all_resolved"
KINDS = {"new": "alert_added", "fired": "alert_fired", "resolved": "alert_resolved"}


def message_key(received_id: int) -> str:
    return f"alerts_resolved:{received_id}"


class AlertNotes:
    def __init__(self, svc: Services, warroom: Room, checklists: Checklists, resolution: Resolution) -> None:
        self.svc = svc
        self.warroom = warroom
        self.checklists = checklists
        self.resolution = resolution
        svc.timers.on(NOTES_TIMER, self.on_notes_timer)
        svc.timers.on(ALL_RESOLVED_TIMER, self.on_all_resolved_timer)

    async def on_notes_timer(self, timer: Timer) -> None:
        assert timer.incident_id is not None
        wrote = await self.write_notes(timer.incident_id)
        if wrote or timer.attempts:  # a retry re-renders even when an earlier attempt wrote the lines
            await self.warroom.refresh(timer.incident_id)

    async def write_notes(self, incident_id: str) -> int:
        """Write every pending alert change of the incident as one timeline line each; the number written."""
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            rows = list((await session.exec(select(ReceivedAlert).where(
                ReceivedAlert.incident_id == incident_id, ReceivedAlert.note_pending == True)  # noqa: E712
                .order_by(col(ReceivedAlert.id)).with_for_update())).all())
            if not rows:
                return 0
            tracked = (await session.exec(select(IncidentAlert).where(IncidentAlert.incident_id == incident_id))).all()
            for row in rows:
                change = {"resolved_noted": "resolved", "fired_again": "fired"}.get(row.outcome, "new")
                timeline.record(session, incident_id, row.received_at, KINDS[change], change_line(change, row.payload),
                                source=row.source, fingerprint=row.fingerprint, status=row.status)
            await session.exec(update(ReceivedAlert).where(  # type: ignore[call-overload]
                col(ReceivedAlert.id).in_([r.id for r in rows])).values(note_pending=False))
            incident = await session.get(Incident, incident_id)
            last = rows[-1]
            if (incident is not None and incident.status == "open" and last.status == "resolved" and tracked
                    and all(a.status == "resolved" for a in tracked)):
                await timers.schedule(session, key=f"{ALL_RESOLVED_TIMER}:{last.id}", kind=ALL_RESOLVED_TIMER,
                                      due_at=now, incident_id=incident_id, payload={"received": last.id})
        return len(rows)

    async def on_all_resolved_timer(self, timer: Timer) -> None:
        assert timer.incident_id is not None
        received = int(timer.payload["received"])
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, timer.incident_id)
            alerts = (await session.exec(select(IncidentAlert).where(
                IncidentAlert.incident_id == timer.incident_id))).all()
        if incident is None or incident.status != "open" or any(a.status == "firing" for a in alerts):
            return  # closed, or something fired again since: nothing true to say
        thread = await self.warroom.thread_ts(incident.id)
        if thread is None:
            raise RuntimeError("the war room has no header yet")  # retried: the room is on its way
        names = sorted({a.name for a in alerts})
        at = max(a.changed_at for a in alerts)
        leads = await authz.who_can(self.svc, "alerts_resolved_validate", authz.Subject(incident.id))
        await self.svc.slack.put_message(incident.id, message_key(received), thread[0], all_resolved_text(names, at),
                                         all_resolved_blocks(received, names, at, leads), thread_ts=thread[1])
        async with self.svc.db.session() as session:
            timeline.record(session, incident.id, self.svc.clock.now(), "alerts_all_resolved",
                            all_resolved_text(names, at))

    # --- the incident lead's buttons -------------------------------------------------------------------

    async def move_to_validation(self, incident_id: str, user: str) -> str:
        """Start the procedure's validation phase (the last but one, or the last) now; the answer for the clicker."""
        try:
            await authz.require(self.svc, "alerts_resolved_validate", user, authz.Subject(incident_id))
        except authz.Refused as exc:
            return str(exc)
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None or incident.status != "open" or incident.phase_id is None:
            return "This incident is closed."
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        target = validation_phase(procedure)
        phases = list(procedure.phases)
        current = procedure.phase(incident.phase_id)
        if phases.index(current) >= phases.index(target):
            return f"The incident is already in Phase {current.number}: {current.title}."
        if not await self.checklists.start_phase(incident_id, target, from_phase=current):
            return "The phase changed meanwhile; nothing was moved."
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), "moved_to_validation",
                            f"Moved to Phase {target.number}: {target.title} after every alert resolved", actor=user)
        return f"Moved to Phase {target.number}: {target.title}."

    async def resolve(self, incident_id: str, user: str) -> str:
        try:
            await self.resolution.resolve(incident_id, user)
        except authz.Refused as exc:
            return str(exc)
        return "Resolved."


def validation_phase(procedure: Any) -> Any:
    """The phase whose steps validate the system: the first after the rollback's execution, else the last."""
    phases = list(procedure.phases)
    execution = next((i for i, p in enumerate(phases) if p.replaced_by_scenario), None)
    if execution is not None and execution + 1 < len(phases):
        return phases[execution + 1]
    return phases[-1]
