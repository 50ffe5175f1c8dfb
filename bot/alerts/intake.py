"""Alerts into incidents: store every change, map it to a trigger, open at most one incident per trigger while it
is open, and track the incident's alerts by fingerprint (they never close it).

The webhook is answered once the alert is durably stored, in one short transaction:
- a repeat of a known alert in the same state (the storm's common case) is one indexed read of its
  `incident_alerts` row and nothing else: no write, no note, no Slack call (counted in `rollbot_alerts`);
- a new alert in the group or a state change (fired, resolved) stores a `received_alerts` row owed its timeline
  line and schedules an `alert_notes` timer in the same transaction; the timer writes the lines in batches after
  the answer (bot/alerts/notes.py);
- the first alert of a trigger declares the incident's receipt with the alert: its row, taking the trigger's
  dedup key, and the opening lines, with the rest of the declaration (steps, timers) owed by an outbox row in the
  same transaction; the webhook's process writes the rest after the answer, then opens the war room.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.matching import NoMatch, dedup_key, match_trigger
from bot.alerts.model import NormalizedAlert
from bot.alerts.views import labels_text
from bot.core import timeline, timers
from bot.core.events import Outbound
from bot.core.services import Services
from bot.incidents.service import Also, Declaration, Incidents
from bot.runbook.model import Trigger
from bot.slack.blocks import escape
from bot.store.models import Incident, IncidentAlert, ReceivedAlert, Timer


@dataclass
class IntakeResult:
    opened: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    resolved_noted: list[str] = field(default_factory=list)
    unmatched: list[dict[str, str]] = field(default_factory=list)
    triage: list[tuple[int, str]] = field(default_factory=list)  # (stored alert, why): owed a triage post
    repeats: int = 0  # notifications of a known alert in the same state: counted, nothing else
    repeated: list[str] = field(default_factory=list)  # the incidents those belong to
    declaring: dict[str, Outbound] = field(default_factory=dict)  # opened incident -> its rest, owed after the answer

    def as_json(self) -> dict[str, object]:
        return {"ok": True, "opened": self.opened, "attached": self.attached,
                "resolved_noted": self.resolved_noted, "unmatched": self.unmatched, "repeats": self.repeats}


TRIAGE_TIMER = "triage_post"
TRIAGE_GRACE = timedelta(seconds=30)  # the webhook's own process posts at once; the timer is the durable fallback
NOTES_TIMER = "alert_notes"  # due at once: the next timer tick writes the pending lines of the incident
Change = Literal["new", "fired", "resolved", "repeat"]


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class AlertIntake:
    def __init__(self, svc: Services, incidents: Incidents) -> None:
        self.svc = svc
        self.incidents = incidents
        self._changing: dict[str, asyncio.Future[None]] = {}  # per dedup key (trigger): a change under way
        svc.timers.on(TRIAGE_TIMER, self.on_triage_timer)

    async def on_triage_timer(self, timer: Timer) -> None:
        await self.post_triage(int(timer.payload["received"]), str(timer.payload["reason"]))

    async def post_triage(self, received_id: int, reason: str) -> None:
        from bot.alerts.triage import post_triage  # the triage view pulls in Block Kit: only when needed

        await post_triage(self.svc, received_id, reason)

    async def receive(self, alerts: list[NormalizedAlert]) -> IntakeResult:
        result = IntakeResult()
        for alert in alerts:
            await self._one(alert, result)
        return result

    async def _one(self, alert: NormalizedAlert, result: IntakeResult) -> None:
        runbook = self.svc.runbook
        match = match_trigger(alert, runbook.triggers)
        if isinstance(match, NoMatch):
            outcome = getattr(match, "outcome", "unmatched")
            received = await self._store(alert, None, outcome, triage_reason=match.reason)
            result.unmatched.append({"name": alert.name, "reason": match.reason, "outcome": outcome})
            if alert.firing:
                result.triage.append((received, match.reason))
            return
        trigger = runbook.trigger(match.trigger_id)
        key = dedup_key(trigger.id)
        attached = await self._known(alert, key)
        while attached is None:
            # Past a miss, one change per trigger at a time in this process: while one request opens the incident
            # (or records a change), the storm's next posts wait for it here, not on the database's locks, and
            # then find the alert with their read, side by side. Across replicas the unique dedup key still
            # decides; this only keeps the waiting cheap.
            pending = self._changing.get(key)
            if pending is None:
                done = self._changing[key] = asyncio.get_running_loop().create_future()
                try:
                    await self._change(alert, trigger, key, result)
                finally:
                    del self._changing[key]
                    done.set_result(None)
                return
            await asyncio.shield(pending)  # a waiter given up on must not cancel the change it waits for
            attached = await self._known(alert, key)
        self._count(attached, result)

    async def _change(self, alert: NormalizedAlert, trigger: Trigger, key: str, result: IntakeResult) -> None:
        attached = await self._known(alert, key) or await self._attach(alert, trigger.id, key)
        if attached is None and not alert.firing:  # resolved, and no open incident: stored, nothing to say
            await self._store(alert, trigger.id, "resolved_noted")
            return
        if attached is None:
            incident, created, rest = await self.incidents.declare_receipt(*self._declaration(alert, trigger, key))
            if created:
                result.opened.append(incident.id)
                result.declaring[incident.id] = rest
                return
            attached = await self._attach(alert, trigger.id, key)  # another replica opened it a moment ago
            if attached is None:
                return
        self._count(attached, result)

    def _declaration(self, alert: NormalizedAlert, trigger: Trigger, key: str) -> tuple[Declaration, Also]:
        """The incident an alert opens, and the alert's own rows written with it."""
        evidence = f"{alert.source}: {alert.summary}" + (f" (value {alert.value:g}{_unit(trigger)})"
                                                          if alert.value is not None else "")

        async def with_alert(session: AsyncSession, incident: Incident) -> None:
            await self._track(session, incident.id, alert, "opened", trigger.id)

        return Declaration(
            level=trigger.level, declared_by=f"alert:{alert.source}", title=f"{trigger.title}: {alert.name}"[:200],
            trigger_id=trigger.id, scenario_id=trigger.scenario, evidence=evidence[:1000], dedup_key=key,
        ), with_alert

    async def rehearse(self) -> None:
        """Start-up's dress rehearsal of the first alert: its look-up, then its declaration written and rolled back
        (`Incidents.rehearse`), so the alert that opens the first incident is answered at a warm process's speed."""
        trigger = next(iter(self.svc.runbook.triggers), None)
        if trigger is None:
            return
        alert = NormalizedAlert(source="alertmanager", fingerprint="rollbot-rehearsal", status="firing",
                                name="RollbotRehearsal", summary="start-up rehearsal", labels={"alertname": "rehearsal"})
        key = f"{dedup_key(trigger.id)}:rehearsal"  # never an open incident's key
        await self._known(alert, key)
        await self.incidents.rehearse(*self._declaration(alert, trigger, key))

    @staticmethod
    def _count(attached: tuple[str, Change], result: IntakeResult) -> None:
        incident_id, change = attached
        if change == "repeat":
            result.repeats += 1
            if incident_id not in result.repeated:
                result.repeated.append(incident_id)
        elif change == "resolved":
            if incident_id not in result.resolved_noted:
                result.resolved_noted.append(incident_id)
        elif incident_id not in result.attached:
            result.attached.append(incident_id)

    async def _known(self, alert: NormalizedAlert, key: str) -> tuple[str, Change] | None:
        """A repeat: one indexed read of the alert's row, in this state, on the trigger's open incident (dedup_key
        is set only while open), without a write or a lock, and nothing else. One hot row written by every repeat
        would serialise a storm on its row lock (PostgreSQL) or the write lock (SQLite)."""
        async with self.svc.db.read() as connection:
            found = (await connection.execute(select(IncidentAlert.incident_id).where(
                IncidentAlert.source == alert.source, IncidentAlert.fingerprint == alert.fingerprint,
                IncidentAlert.status == alert.status,
                col(IncidentAlert.incident_id).in_(select(Incident.id).where(Incident.dedup_key == key))))).scalar()
        return (str(found), "repeat") if found is not None else None

    async def _attach(self, alert: NormalizedAlert, trigger_id: str, key: str) -> tuple[str, Change] | None:
        """Track the alert on the trigger's open incident, in one transaction; None when none is open."""
        async with self.svc.db.session() as session:
            incident_id = (await session.exec(select(Incident.id).where(Incident.dedup_key == key))).first()
            if incident_id is None:
                return None
            change = await self._track(session, incident_id, alert,
                                       "attached" if alert.firing else "resolved_noted", trigger_id)
            return incident_id, change

    async def _track(self, session: AsyncSession, incident_id: str, alert: NormalizedAlert, outcome: str,
                     trigger_id: str) -> Change:
        """Record the alert on the incident: new, a state change, or (lost a race) a repeat. A new alert or a
        change stores the notification, owed its timeline line (the opening alert's line is written here)."""
        now = self.svc.clock.now()
        payload = alert.as_dict()
        match = (IncidentAlert.source == alert.source, IncidentAlert.fingerprint == alert.fingerprint,
                 IncidentAlert.incident_id == incident_id)
        inserted = await session.exec(_insert(session)(IncidentAlert).values(  # type: ignore[call-overload]
            incident_id=incident_id, source=alert.source, fingerprint=alert.fingerprint, name=alert.name[:200],
            status=alert.status, first_seen_at=now, changed_at=now, payload=payload,
        ).on_conflict_do_nothing(index_elements=["source", "fingerprint", "incident_id"]))
        change: Change
        if inserted.rowcount:
            change = "new"
        else:
            changed = await session.exec(update(IncidentAlert).where(  # type: ignore[call-overload]
                *match, IncidentAlert.status != alert.status).values(
                    status=alert.status, changed_at=now, payload=payload))
            if not changed.rowcount:  # another request recorded this very change a moment ago
                return "repeat"
            change = "fired" if alert.firing else "resolved"
            outcome = "fired_again" if alert.firing else outcome
        opening = outcome == "opened"
        row = ReceivedAlert(source=alert.source, fingerprint=alert.fingerprint, status=alert.status,
                            name=alert.name[:200], received_at=now, trigger_id=trigger_id, incident_id=incident_id,
                            outcome=outcome, payload=payload, note_pending=not opening)
        session.add(row)
        if opening:
            timeline.record(session, incident_id, now, "alert_received",
                            escape(f"Alert from {alert.source}: {alert.name} — {alert.summary}"[:500])
                            + (f" — {labels}" if (labels := labels_text(alert.labels)) else ""),
                            fingerprint=alert.fingerprint)
        else:
            await session.flush()
            await timers.schedule(session, key=f"{NOTES_TIMER}:{row.id}", kind=NOTES_TIMER, due_at=now,
                                  incident_id=incident_id)
        return change

    async def _store(self, alert: NormalizedAlert, trigger_id: str | None, outcome: str,
                     triage_reason: str | None = None) -> int:
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            row = ReceivedAlert(source=alert.source, fingerprint=alert.fingerprint, status=alert.status,
                                name=alert.name[:200], received_at=now, trigger_id=trigger_id,
                                outcome=outcome, payload=alert.as_dict())
            session.add(row)
            if triage_reason is not None and alert.firing:
                # The triage post is owed with the alert: the timer posts it (once per firing episode), so an
                # alert that opens nothing is never silently dropped by a crash or a Slack failure.
                await session.flush()
                await timers.schedule(session, key=f"triage:{row.id}", kind=TRIAGE_TIMER, due_at=now + TRIAGE_GRACE,
                                      payload={"received": row.id, "reason": triage_reason[:500]})
        return row.id or 0


def _unit(trigger: object) -> str:
    condition = getattr(trigger, "condition", None)
    return condition.unit if condition is not None else ""
