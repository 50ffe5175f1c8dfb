"""The shared collaborators every engine module uses, wired once in the composition root (bot/app.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.coord import Coordinator
from bot.core.errors import Refused
from bot.core.events import EventBus
from bot.core.roles import RoleDirectory
from bot.core.roster import Roster
from bot.core.snapshot import Snapshot, load_snapshot
from bot.core.timers import TimerService
from bot.runbook.model import Runbook
from bot.runbook.prometheus import prometheus_base, with_prometheus
from bot.slack.gateway import SlackGateway
from bot.store.db import Database
from bot.store.models import Incident


@dataclass
class Services:
    settings: Settings
    clock: Clock
    db: Database
    runbook: Runbook
    roster: Roster
    slack: SlackGateway
    roles: RoleDirectory
    coord: Coordinator
    timers: TimerService
    events: EventBus = field(default_factory=EventBus)  # see bot/core/events.py for the event names
    # Where work that must not hold its caller runs (requested re-renders, fast paths after a click or a timer):
    # the app sets its tracked tasks, so `idle` and shutdown wait for them.
    background: Callable[[Coroutine[Any, Any, Any]], Any] = asyncio.ensure_future

    def __post_init__(self) -> None:
        self.events.bind(self.db, self.clock, self.timers)  # the timer worker is the outbox's worker

    def measured_gates(self) -> frozenset[str]:
        """The `prometheus` actions a configured Prometheus can answer (the rest are a person's call)."""
        env = with_prometheus(None, self.settings.prometheus_url)
        return frozenset(a.id for a in self.runbook.actions if a.kind == "prometheus" and prometheus_base(a, env))

    async def incident(self, incident_id: str) -> Incident:
        """The incident's row, read in its own session; Refused when there is none (a stale button, a forged id)."""
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None:
            raise Refused("No such incident.")
        return incident

    async def snapshot(self, incident_id: str, with_holders: bool = True) -> Snapshot:
        snap = await load_snapshot(self.db, self.runbook, incident_id, self.clock.now())
        snap.measured = self.measured_gates()
        if with_holders:
            roles = sorted({*(s.owner for s in snap.procedure.steps()), *self.runbook.incident_lead_roles})
            snap.holders = await self.roles.holders(roles, incident_id)
        return snap
