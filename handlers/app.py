"""What a handler sees of the running bot: the engine's entry points, the Bolt app and the work tracker.

A Protocol, so handlers depend on the engine's packages and never on the composition root that registers them
(`bot/app.py` imports `handlers`, and nothing here imports it back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from aiohttp import web
from slack_bolt.async_app import AsyncApp

from bot.alerts.intake import AlertIntake
from bot.alerts.notes import AlertNotes
from bot.alerts.silencing import AlertSilences
from bot.comms.service import Comms
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.metrics import Metrics
from bot.core.services import Services
from bot.decision.approvals import Approvals
from bot.drills.service import Drills
from bot.escalation.service import Escalation
from bot.executions.service import Executions
from bot.incidents.parked import Outbox
from bot.incidents.resolution import Resolution
from bot.incidents.service import Incidents
from bot.incidents.warroom import WarRoom
from bot.steps.checklists import Checklists
from bot.store.db import Database


class App(Protocol):
    settings: Settings
    clock: Clock
    db: Database
    metrics: Metrics
    svc: Services
    bolt: AsyncApp
    web: web.Application
    ready: bool
    incidents: Incidents
    warroom: WarRoom
    intake: AlertIntake
    checklists: Checklists
    drills: Drills
    escalation: Escalation
    comms: Comms
    resolution: Resolution
    executions: Executions
    approvals: Approvals
    silences: AlertSilences
    alert_notes: AlertNotes
    outbox: Outbox

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
