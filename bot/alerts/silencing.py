"""Silencing an incident's Alertmanager alerts from Slack for an hour, and expiring those silences at resolution.

The silence ids live on the timeline (`alert_silenced` events); `alert_silence_expired` records each expiry, so a
retried expiry only touches silences not yet expired, and Alertmanager's own idempotence covers the rest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from bot.alerts.silences import AlertmanagerError, AlertmanagerSilences
from bot.core import authz, timeline
from bot.core.services import Services
from bot.store.models import Incident, IncidentAlert, TimelineEvent

SILENCE_FOR = timedelta(hours=1)


async def firing_alerts(svc: Services, incident_id: str, source: str | None = None) -> list[dict[str, Any]]:
    """The incident's alerts whose latest notification is firing (one per source and fingerprint)."""
    async with svc.db.session() as session:
        rows = (await session.exec(select(IncidentAlert).where(
            IncidentAlert.incident_id == incident_id, IncidentAlert.status == "firing")
            .order_by(IncidentAlert.first_seen_at, IncidentAlert.id))).all()  # type: ignore[arg-type]
    return [r.payload for r in rows if source is None or r.source == source]


class AlertSilences:
    def __init__(self, svc: Services, name_of: Any) -> None:
        self.svc = svc
        self._name_of = name_of  # user id -> real name (Comms.name)
        svc.events.on("closed", self._on_closed, name="silences.on_closed")

    def _client(self) -> AlertmanagerSilences | None:
        url = self.svc.settings.alertmanager_url
        return AlertmanagerSilences(url) if url else None

    async def silence(self, incident_id: str, user: str) -> str:
        """Silence the incident's firing Alertmanager alerts for an hour; the answer is for the person who clicked."""
        try:
            await authz.require(self.svc, "alerts_silence", user, authz.Subject(incident_id))
        except authz.Refused as exc:
            return str(exc)
        client = self._client()
        if client is None:
            return "Silences need Alertmanager: ask whoever runs Rollbot to set ROLLBOT_ALERTMANAGER_URL."
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None or incident.status == "closed":
            return "This incident is closed."
        alerts = await firing_alerts(self.svc, incident_id, "alertmanager")
        if not alerts:
            return "No Alertmanager alert of this incident is firing."
        name = await self._name_of(user)
        link = f"https://slack.com/app_redirect?channel={incident.channel_id}" if incident.channel_id else ""
        comment = f"Rollbot incident {incident.id}: {incident.title} {link}".strip()
        now = self.svc.clock.now()
        ids = []
        try:
            for alert in alerts:
                ids.append(await client.ensure(alert.get("labels") or {}, created_by=name, comment=comment, now=now,
                                               duration=SILENCE_FOR))
        except AlertmanagerError as exc:
            return f"Alertmanager did not take the silence: {exc}"
        until = (now + SILENCE_FOR).strftime("%H:%M UTC")
        names = ", ".join(sorted({str(a.get("name")) for a in alerts}))
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, now, "alert_silenced",
                            f"{name} silenced {names} in Alertmanager until {until}", actor=user, silence_ids=ids)
        return f"Silenced {names} until {until}."

    async def active(self, incident_id: str) -> list[str]:
        """Silence ids this incident created and has not expired yet."""
        async with self.svc.db.session() as session:
            rows = (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident_id,
                TimelineEvent.kind.in_(("alert_silenced", "alert_silence_expired"))))).all()  # type: ignore[attr-defined]
        made = [sid for r in rows if r.kind == "alert_silenced" for sid in r.data.get("silence_ids", [])]
        gone = {sid for r in rows if r.kind == "alert_silence_expired" for sid in r.data.get("silence_ids", [])}
        return [sid for sid in dict.fromkeys(made) if sid not in gone]

    async def expire(self, incident_id: str) -> int:
        """Expire this incident's silences (at resolution); the number expired."""
        ids = await self.active(incident_id)
        client = self._client()
        if not ids or client is None:
            return 0
        done = [sid for sid in ids if await client.expire(sid)]
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), "alert_silence_expired",
                            f"Expired {len(done)} Alertmanager silence{'s' if len(done) != 1 else ''} at resolution",
                            silence_ids=done)
        return len(done)

    async def _on_closed(self, incident_id: str, **_: Any) -> None:
        await self.expire(incident_id)
