"""The composition root: builds the store, Slack client, engine modules, Bolt app, web routes and scheduler.

The one module of bot/ allowed to import `handlers` (tests/test_layout.py): registering them is composition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from slack_bolt.async_app import AsyncApp

import handlers
from bot.alerts.intake import AlertIntake
from bot.alerts.notes import AlertNotes
from bot.alerts.silencing import AlertSilences
from bot.comms.service import Comms
from bot.core import decider_dm
from bot.core.clock import Clock, SystemClock
from bot.core.config import Settings, require_slack
from bot.core.coord import Coordinator, LocalCoordinator
from bot.core.metrics import Metrics
from bot.core.roles import RoleDirectory
from bot.core.roster import load_roster
from bot.core.services import Services
from bot.core.tasks import TaskSet
from bot.core.timers import TimerService
from bot.decision.approvals import Approvals
from bot.drills.service import Drills
from bot.escalation.service import Escalation
from bot.executions.service import Executions
from bot.incidents.parked import Outbox
from bot.incidents.resolution import Resolution
from bot.incidents.service import Incidents
from bot.incidents.warroom import WarRoom
from bot.runbook.loader import load_runbook
from bot.slack.client import make_client
from bot.slack.gateway import SlackGateway
from bot.slack.queue import SlackCallQueue
from bot.slack.ratelimit import SlackRateLimiter
from bot.steps.checklists import Checklists
from bot.store.db import Database


class Rollbot:
    def __init__(self, settings: Settings, clock: Clock | None = None, coord: Coordinator | None = None,
                 db_schema: str | None = None) -> None:
        require_slack(settings)
        assert settings.slack_bot_token and settings.slack_signing_secret
        self.settings = settings
        self.clock = clock or SystemClock()
        self.db = Database(settings.database_url, schema=db_schema)
        runbook = load_runbook(settings.runbook_path)
        roster = load_roster(settings.roster_path, runbook)
        self.metrics = Metrics()
        client = make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
        client.metrics = self.metrics
        slack = SlackGateway(client, self.db, settings.post_claim_stale_seconds)
        if coord is None and settings.redis_url:
            from bot.core.coord_redis import RedisCoordinator

            coord = RedisCoordinator(settings.redis_url, monotonic=self.clock.monotonic)
            coord.metrics = self.metrics
        coord = coord or LocalCoordinator(self.clock.monotonic)
        roles = RoleDirectory(roster, slack, self.db, coord, settings.role_cache_seconds)
        timers = TimerService(self.db, self.clock, settings.replica_id)
        timers.metrics = self.metrics
        scale = settings.slack_rate_scale
        # Scale 0 turns the limiter off, not the spacing of re-renders: that has its own setting.
        client.queue = SlackCallQueue(SlackRateLimiter(coord, scale),
                                      refresh_interval=settings.slack_refresh_seconds / (scale or 1))
        self.svc = Services(settings=settings, clock=self.clock, db=self.db, runbook=runbook, roster=roster,
                            slack=slack, roles=roles, coord=coord, timers=timers)
        self.incidents = Incidents(self.svc)
        self.warroom = WarRoom(self.svc)
        self.intake = AlertIntake(self.svc, self.incidents)
        timers.on("warroom_retry", self.warroom.on_retry_timer)
        # Engine modules added by later features attach here (each subscribes to svc.events / timers itself).
        self.checklists = Checklists(self.svc, self.warroom)
        self.drills = Drills(self.svc, self.incidents, self.warroom)
        self.escalation = Escalation(self.svc)
        self.comms = Comms(self.svc)
        self.resolution = Resolution(self.svc, self.warroom)
        self.executions = Executions(self.svc, self.warroom, self.checklists)
        self.approvals = Approvals(self.svc, self.warroom, self.checklists)
        self.silences = AlertSilences(self.svc, self.comms.name)
        self.alert_notes = AlertNotes(self.svc, self.warroom, self.checklists, self.resolution)
        self.outbox = Outbox(self.svc, self.warroom)
        decider_dm.register(self.svc)
        self.bolt = AsyncApp(client=client, signing_secret=settings.slack_signing_secret.get_secret_value(),
                             process_before_response=False, ignoring_self_events_enabled=True)
        self.tasks = TaskSet("background task")  # the work after an ack, requested re-renders, fast paths
        self.svc.background = self.spawn  # requested re-renders, fast paths: tracked like the work after an ack
        self._scheduler: AsyncIOScheduler | None = None
        self._ticking: asyncio.Task[Any] | None = None
        self.ready = False
        # The composition root is the one module of bot/ that knows the handlers: it hands itself to them.
        self.web = web.Application(client_max_size=1 << 20)
        handlers.register(self)

    def socket_mode_handler(self, app_token: str) -> Any:
        """Socket Mode with the same request handling as /slack/events (dedup, metrics, ack latency)."""
        return handlers.socket_mode_handler(self, app_token)

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, scheduler: bool = True) -> None:
        await self.db.upgrade()
        await self.svc.slack.identify()
        roles = sorted({r.id for r in self.svc.runbook.roles})
        await self.svc.roles.warm(roles)
        await self.executions.start()  # marks runs whose lease expired (a previous process died) interrupted
        await self.svc.timers.release_own()  # work this replica's previous life claimed and never finished
        if scheduler:
            self.svc.timers.refill = True  # a finished handler makes room for the next due timer at once
            self._scheduler = AsyncIOScheduler()
            self._scheduler.add_job(self._tick, "interval", seconds=self.settings.tick_seconds,
                                    max_instances=1, coalesce=True, id="timer-tick")
            for drill in self.svc.runbook.drills:  # every replica schedules; a claim lets one of them run it
                self._scheduler.add_job(self.drills.scheduled, CronTrigger.from_crontab(drill.cron, timezone="UTC"),
                                        args=[drill.id], id=f"drill-{drill.id}", coalesce=True)
            self._scheduler.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.executions.stop()  # running actions are stopped and recorded, not left 'running'
        if self._scheduler:
            self._scheduler.shutdown(wait=False)
        if self._ticking is not None:  # a tick in flight finishes before the database goes (no CancelledError)
            await asyncio.wait({self._ticking}, timeout=5)
        await self.svc.timers.close(timeout=5)  # and so do the timer handlers it started
        await self.tasks.wait(5)
        await self.svc.coord.close()
        await self.db.dispose()

    async def _tick(self) -> None:
        self._ticking = asyncio.current_task()
        try:
            await self.svc.timers.dispatch()  # starts the due handlers; a slow one never holds the next tick
        finally:
            self._ticking = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Work that continues after the ack."""
        return self.tasks.spawn(coro)

    def pending(self) -> set[asyncio.Task[Any]]:
        """Background work not finished: ours, and the listener work Bolt continues after an ack (its tasks are
        not exposed, so they are found by name)."""
        return set(self.tasks.running) | {
            t for t in asyncio.all_tasks() if t is not asyncio.current_task()
            and "run_ack_function_asynchronously" in getattr(t.get_coro(), "__qualname__", "")}

    async def idle(self) -> None:
        """Wait for background work to finish (tests and the demo use it instead of sleeping)."""
        while pending := self.pending():
            await asyncio.wait(pending)
