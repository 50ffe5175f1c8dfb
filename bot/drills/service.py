"""Drills: the same procedure in a `drill-` channel, actions in dry run, DMs marked as drills, and a scorecard at
the end. Scheduled drills fire from the runbook's cron, once per scheduled time even with several replicas."""

from __future__ import annotations

from datetime import datetime

from bot.core.once import claim_once
from bot.core.services import Services
from bot.incidents.service import Declaration, Incidents
from bot.incidents.warroom import WarRoom
from bot.reports import history
from bot.reports.scorecard import Scorecard
from bot.reports.scorecard_view import scorecard_blocks, scorecard_text
from bot.runbook.model import Drill
from bot.store.models import Incident


class Drills:
    def __init__(self, svc: Services, incidents: Incidents, warroom: WarRoom) -> None:
        self.svc = svc
        self.incidents = incidents
        self.warroom = warroom
        svc.events.on("closed", self._on_closed, name="drills.on_closed")

    def declaration(self, declared_by: str, scenario_id: str | None, drill: Drill | None = None,
                    level: str | None = None) -> Declaration:
        runbook = self.svc.runbook
        scenario_id = scenario_id or (drill.scenario if drill else None)
        scenario = runbook.scenario(scenario_id) if scenario_id else None
        trigger = runbook.trigger(scenario.triggers[0]) if scenario and scenario.triggers else None
        title = f"Drill: {scenario.title if scenario else (drill.title if drill else 'rollback procedure')}"
        return Declaration(level=level or (trigger.level if trigger else runbook.levels[0].id), declared_by=declared_by,
                           title=title, trigger_id=trigger.id if trigger else None, scenario_id=scenario_id,
                           description=f"{drill.title} ({drill.environment})" if drill else "Rollback drill",
                           is_drill=True)

    async def start(self, declared_by: str, scenario_id: str | None = None, drill: Drill | None = None,
                    level: str | None = None, response_url: str | None = None) -> Incident:
        incident, _ = await self.incidents.declare(self.declaration(declared_by, scenario_id, drill, level))
        if drill is not None:
            async with self.svc.db.session() as session:
                row = await session.get(Incident, incident.id, with_for_update=True)
                assert row is not None
                row.data = {**row.data, "drill_id": drill.id}
        await self.warroom.open(incident.id, response_url)
        return incident

    async def scheduled(self, drill_id: str, fire_time: datetime | None = None) -> Incident | None:
        """The cron job: the first replica to claim this drill's scheduled minute runs it; the others do nothing."""
        drill = next(d for d in self.svc.runbook.drills if d.id == drill_id)
        when = (fire_time or self.svc.clock.now()).replace(second=0, microsecond=0)
        async with self.svc.db.session() as session:
            won = await claim_once(session, f"drill:{drill.id}:{when.isoformat()}", self.svc.settings.replica_id,
                                   self.svc.clock.now())
        if not won:
            return None
        return await self.start(f"schedule:{drill.id}", drill=drill)

    async def scorecard(self, incident_id: str) -> Scorecard:
        """The drill's plan-against-actual, from the same history the post-incident report is written from."""
        return (await history.load(self.svc.db, self.svc.runbook, incident_id, self.svc.clock.now())).plan

    async def _on_closed(self, incident_id: str) -> None:
        incident = await self.incidents.get(incident_id)
        if incident is None or not incident.is_drill:
            return
        card = await self.scorecard(incident_id)
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id, with_for_update=True)
            assert row is not None
            row.data = {**row.data, "scorecard": card.as_dict()}
        if incident.channel_id:
            await self.svc.slack.put_message(incident_id, "scorecard", incident.channel_id, scorecard_text(card),
                                             scorecard_blocks(card))
