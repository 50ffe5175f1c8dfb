"""Alerts into incidents: store every alert, map it to a trigger, open at most one incident per trigger
while it is open, and add repeats and resolutions to that incident's timeline (they never close it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.alerts.matching import dedup_key, match_trigger
from bot.alerts.model import NormalizedAlert
from bot.engine import timeline
from bot.engine.incidents import Declaration, Incidents
from bot.engine.services import Services
from bot.store.models import ReceivedAlert


@dataclass
class IntakeResult:
    opened: list[str] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    resolved_noted: list[str] = field(default_factory=list)
    unmatched: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"ok": True, "opened": self.opened, "attached": self.attached,
                "resolved_noted": self.resolved_noted, "unmatched": self.unmatched}


class AlertIntake:
    def __init__(self, svc: Services, incidents: Incidents) -> None:
        self.svc = svc
        self.incidents = incidents

    async def receive(self, alerts: list[NormalizedAlert]) -> IntakeResult:
        result = IntakeResult()
        for alert in alerts:
            await self._one(alert, result)
        return result

    async def _one(self, alert: NormalizedAlert, result: IntakeResult) -> None:
        runbook = self.svc.runbook
        match = match_trigger(alert, runbook.triggers)
        if not match:
            await self._store(alert, None, None, "unmatched")
            result.unmatched.append({"name": alert.name, "reason": match.reason})
            return
        trigger = runbook.trigger(match.trigger_id)
        key = dedup_key(trigger.id)
        if not alert.firing:
            incident = await self.incidents.open_by_dedup_key(key)
            await self._store(alert, trigger.id, incident.id if incident else None, "resolved_noted")
            if incident:
                await self.incidents.note(incident.id, "alert_resolved",
                                          f"{alert.source} reports {alert.name} resolved (the incident stays open)")
                result.resolved_noted.append(incident.id)
            return
        evidence = f"{alert.source}: {alert.summary}" + (f" (value {alert.value:g}{_unit(trigger)})"
                                                          if alert.value is not None else "")
        incident, created = await self.incidents.declare(Declaration(
            level=trigger.level, declared_by=f"alert:{alert.source}", title=f"{trigger.title}: {alert.name}"[:200],
            trigger_id=trigger.id, scenario_id=trigger.scenario, evidence=evidence[:1000], dedup_key=key,
        ))
        await self._store(alert, trigger.id, incident.id, "opened" if created else "attached")
        if created:
            result.opened.append(incident.id)
        else:
            await self.incidents.note(incident.id, "alert_repeat", f"Alert again: {evidence}"[:500],
                                      source=alert.source, fingerprint=alert.fingerprint)
            if incident.id not in result.attached:
                result.attached.append(incident.id)

    async def _store(self, alert: NormalizedAlert, trigger_id: str | None, incident_id: str | None,
                     outcome: str) -> None:
        async with self.svc.db.session() as session:
            session.add(ReceivedAlert(source=alert.source, fingerprint=alert.fingerprint, status=alert.status,
                                      name=alert.name[:200], received_at=self.svc.clock.now(), trigger_id=trigger_id,
                                      incident_id=incident_id, outcome=outcome, payload=alert.as_dict()))
            if incident_id and outcome == "opened":
                timeline.record(session, incident_id, self.svc.clock.now(), "alert_received",
                                f"Alert from {alert.source}: {alert.name} — {alert.summary}"[:500],
                                fingerprint=alert.fingerprint)


def _unit(trigger: object) -> str:
    condition = getattr(trigger, "condition", None)
    return condition.unit if condition is not None else ""
