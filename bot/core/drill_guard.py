"""Drills never reach the outside world. Every integration that leaves the bot and Slack (Statuspage, http and
check actions, shell actions that run for real, webhooks) asks `reaches_outside` first; in a drill the answer is
no, and the blocked attempt goes on the timeline. Management DMs in a drill go only to the drill's participants
(bot/escalation/service.py)."""

from __future__ import annotations

from bot.core import timeline
from bot.core.services import Services
from bot.store.models import Incident

INTEGRATIONS = ("statuspage", "action")  # the names recorded when a drill is kept inside


async def reaches_outside(svc: Services, incident: Incident, integration: str, what: str) -> bool:
    """True when `incident` may call `integration`; False for a drill (recorded on its timeline)."""
    assert integration in INTEGRATIONS, integration
    if not incident.is_drill:
        return True
    async with svc.db.session() as session:
        timeline.record(session, incident.id, svc.clock.now(), "drill_kept_inside",
                        f"Drill: {what} was not sent to {integration} (drills never reach the outside world)",
                        integration=integration)
    return False
