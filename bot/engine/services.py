"""The shared collaborators every engine module uses, wired once in the composition root (bot/app.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.config import Settings
from bot.coord import Coordinator
from bot.engine.events import EventBus
from bot.engine.roles import RoleDirectory
from bot.engine.snapshot import Snapshot, load_snapshot
from bot.engine.timers import TimerService
from bot.roster import Roster
from bot.runbook.model import Runbook
from bot.slack.gateway import SlackGateway
from bot.store.db import Database
from bot.store.models import Incident

DeclareHook = Callable[[AsyncSession, Incident], Awaitable[None]]


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
    events: EventBus = field(default_factory=EventBus)  # see bot/engine/events.py for the event names
    # Run inside the transaction that creates an incident (timers, approval requests...):
    on_declare: list[DeclareHook] = field(default_factory=list)

    async def snapshot(self, incident_id: str, with_holders: bool = True) -> Snapshot:
        snap = await load_snapshot(self.db, self.runbook, incident_id, self.clock.now())
        if with_holders:
            roles = sorted({s.owner for s in snap.procedure.steps()})
            snap.holders = await self.roles.holders(roles, incident_id)
        return snap
