"""Declaring an incident: one row, its steps, its timeline and its timers, in one transaction; or, for an alert,
in two: the receipt the webhook answers on (the row, its opening lines, the alert), then the rest from the outbox.

At most one open incident per dedup key (the trigger): the unique column refuses a second insert, and the
caller gets the open incident instead.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import timeline, timers
from bot.core.events import Outbound
from bot.core.services import Services
from bot.runbook.procedure import procedure_for
from bot.slack.blocks import escape
from bot.store.models import Incident, IncidentAlert, StepState

Also = Callable[[AsyncSession, Incident], Awaitable[None]]


@dataclass(frozen=True)
class Declaration:
    level: str
    declared_by: str
    title: str
    trigger_id: str | None = None
    scenario_id: str | None = None
    description: str = ""
    evidence: str = ""
    version: str | None = None
    origin_channel_id: str | None = None
    is_drill: bool = False
    dedup_key: str | None = None


def new_incident_id(now_str: str) -> str:
    return f"inc-{now_str}-{secrets.token_hex(2)}"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


DECLARING = "declaring"  # an alert's incident between its receipt and the rest of its declaration


class Incidents:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        svc.events.on("declaring", self._finish_event, name="incidents.finish_declaration")

    async def declare(self, d: Declaration, also: Also | None = None) -> tuple[Incident, bool]:
        """Returns (incident, created). A duplicate by dedup key returns the open incident, created=False.
        `also` writes more in the declaration's transaction (the opening alert)."""
        incident, created, _ = await self._declare(d, also, receipt=False)
        return incident, created

    async def declare_receipt(self, d: Declaration, also: Also | None = None) -> tuple[Incident, bool, Outbound]:
        """The first half of a declaration, for an alert's webhook to answer on: the incident's row (its dedup key
        taken, so repeats and other replicas find it), the opening lines and `also` (the alert's rows), with the
        rest owed by an outbox row in the same transaction. `finish` writes the rest (steps, the hooks' timers);
        the returned rows' fast path runs it, the outbox worker after a crash."""
        return await self._declare(d, also, receipt=True)

    async def _declare(self, d: Declaration, also: Also | None, receipt: bool) -> tuple[Incident, bool, Outbound]:
        incident = self._new(d)
        try:
            async with self.svc.db.session() as session:
                out = await self._write(session, incident, also, receipt)
        except IntegrityError:
            if d.dedup_key is None:
                raise
            existing = await self.open_by_dedup_key(d.dedup_key)
            if existing is None:  # closed between our insert and this read: a fresh declaration may proceed
                return await self._declare(d, also, receipt)
            return existing, False, Outbound()
        return incident, True, out

    async def rehearse(self, d: Declaration, also: Also | None = None) -> None:
        """Write a whole alert declaration, receipt and rest, and roll it back: start-up runs it so that the first
        real alert finds its statements compiled and its mappers configured (they cost it ~80 ms otherwise)."""
        incident = self._new(d)
        async with self.svc.db.rehearsal() as session:
            await self._write(session, incident, also, receipt=True)
            await self._rest(session, incident)

    def _new(self, d: Declaration) -> Incident:
        runbook, now = self.svc.runbook, self.svc.clock.now()
        runbook.level(d.level)  # unknown level: KeyError before anything is written
        return Incident(
            id=new_incident_id(now.strftime("%Y%m%d-%H%M%S")),
            title=d.title, runbook=runbook.name, trigger_id=d.trigger_id, level=d.level,
            scenario_id=d.scenario_id, declared_by=d.declared_by, declared_at=now, version=d.version,
            description=d.description, evidence=d.evidence, origin_channel_id=d.origin_channel_id,
            is_drill=d.is_drill, dedup_key=d.dedup_key, phase_id=procedure_for(runbook, d.scenario_id).phases[0].id,
        )

    async def _write(self, session: AsyncSession, incident: Incident, also: Also | None, receipt: bool) -> Outbound:
        """The incident's row and opening lines, then `also`; with `receipt`, the rest is owed by an outbox row."""
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        first_phase = procedure.phases[0]
        if receipt:
            incident.status = DECLARING
        session.add(incident)
        await session.flush()
        level = self.svc.runbook.level(incident.level)
        scenario = f", scenario {procedure.scenario.title}" if procedure.scenario else ""
        timeline.record(session, incident.id, incident.declared_at, "declared",
                        f"{'Drill' if incident.is_drill else 'Incident'} declared: {escape(incident.title)} "
                        f"({level.title}{scenario})", actor=incident.declared_by, trigger=incident.trigger_id,
                        level=incident.level, scenario=incident.scenario_id)
        timeline.record(session, incident.id, incident.declared_at, "phase_started",
                        f"Phase {first_phase.number}: {first_phase.title} started", phase=first_phase.id)
        if also is not None:
            await also(session, incident)
        if receipt:
            return await self.svc.events.emit("declaring", session, change=incident.id, incident_id=incident.id)
        await self._rest(session, incident)
        return Outbound()

    async def _rest(self, session: AsyncSession, incident: Incident) -> None:
        """What every declared incident has: its steps' states and what the services schedule for it."""
        procedure = procedure_for(self.svc.runbook, incident.scenario_id)
        first_phase = procedure.phases[0]
        for step in procedure.steps():
            active = step in first_phase.steps
            session.add(StepState(incident_id=incident.id, step_id=step.id, status="active" if active else "pending",
                                  started_at=incident.declared_at if active else None))
        async with timers.batched(session):  # the hooks' ~27 timers: one INSERT
            await self.svc.events.emit("declared", session, incident=incident)

    async def finish(self, incident_id: str) -> bool:
        """The second half of a receipt's declaration, once: True when this call wrote it."""
        async with self.svc.db.session() as session:
            claimed = await session.exec(update(Incident).where(  # type: ignore[call-overload]
                Incident.id == incident_id, Incident.status == DECLARING).values(status="open"))
            if claimed.rowcount != 1:
                return False
            incident = await session.get(Incident, incident_id)
            assert incident is not None
            await self._rest(session, incident)
        return True

    async def _finish_event(self, incident_id: str, **_: Any) -> None:
        await self.finish(incident_id)

    async def open_by_dedup_key(self, key: str) -> Incident | None:
        async with self.svc.db.session() as session:
            return (await session.exec(select(Incident).where(Incident.dedup_key == key))).first()

    async def get(self, incident_id: str) -> Incident | None:
        async with self.svc.db.session() as session:
            return await session.get(Incident, incident_id)

    async def by_channel(self, channel_id: str) -> Incident | None:
        async with self.svc.db.session() as session:
            return (await session.exec(select(Incident).where(Incident.channel_id == channel_id))).first()

    async def open_incidents(self) -> list[Incident]:
        async with self.svc.db.session() as session:
            rows = await session.exec(select(Incident).where(Incident.status == "open")
                                      .order_by(col(Incident.declared_at).desc()))
            return list(rows.all())

    async def note(self, incident_id: str, kind: str, text: str, actor: str | None = None, **data: object) -> None:
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), kind, text, actor=actor, **data)

    async def alert_counts(self, incident_ids: list[str]) -> dict[str, tuple[int, int]]:
        """Per incident: (alerts firing, alerts resolved), by fingerprint."""
        if not incident_ids:
            return {}
        async with self.svc.db.session() as session:
            rows = (await session.exec(select(IncidentAlert.incident_id, IncidentAlert.status, func.count())
                                       .where(col(IncidentAlert.incident_id).in_(incident_ids))
                                       .group_by(IncidentAlert.incident_id, IncidentAlert.status))).all()
        counts: dict[str, tuple[int, int]] = {}
        for incident_id, status, n in rows:
            firing, resolved = counts.get(incident_id, (0, 0))
            counts[incident_id] = (firing + n, resolved) if status == "firing" else (firing, resolved + n)
        return counts
