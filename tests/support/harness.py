"""End-to-end harness: the Slack sandbox, a real Rollbot served over HTTP on a port, a real database,
and a FakeClock that tests move instead of sleeping. Nothing of ours is mocked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import Rollbot
from bot.core.clock import FakeClock
from bot.core.config import load_settings
from bot.core.webserver import start_site
from bot.sandbox.server import SandboxServer
from bot.store.models import Incident
from tests.support.blockkit import assert_everything_posted_is_valid
from tests.support.db import fresh_database


@dataclass
class Harness:
    sb: SandboxServer
    bot: Rollbot
    clock: FakeClock
    app_url: str

    async def command(self, user: str, text: str, channel: str = "C0GENERAL") -> Any:
        result = await self.sb.command(user, channel, "/rollback", text)
        await self.settle()
        return result

    async def click(self, user: str, channel: str, ts: str, **kw: Any) -> Any:
        result = await self.sb.click(user, channel, ts, **kw)
        await self.settle()
        return result

    async def settle(self) -> None:
        """Wait until the bot has finished the work it started after its acks."""
        await self.bot.idle()

    async def advance(self, seconds: float) -> int:
        """Move the clock and run one scheduler tick, as the APScheduler job would."""
        self.clock.advance(seconds)
        fired = await self.bot.svc.timers.tick()
        await self.settle()
        return fired

    async def quiet(self) -> None:
        """Until the bot has nothing left to do at the current time: its background work, the actions running
        (real processes, on wall time) and the timers due now, including those that work made due."""
        while True:
            await self.bot.executions.idle()
            await self.settle()
            if not await self.advance(0) and not self.bot.executions.running_here():
                return

    def state(self) -> dict[str, Any]:
        return self.sb.state()

    def channel(self, channel_id: str) -> dict[str, Any]:
        return next(c for c in self.state()["channels"] if c["id"] == channel_id)

    def messages(self, channel_id: str) -> list[dict[str, Any]]:
        return self.channel(channel_id)["messages"]

    async def incidents(self) -> list[Incident]:
        from sqlmodel import select

        async with self.bot.db.session() as session:
            return list((await session.exec(select(Incident).order_by(Incident.declared_at))).all())

    async def only_incident(self) -> Incident:
        found = await self.incidents()
        assert len(found) == 1, [i.id for i in found]
        return found[0]


@asynccontextmanager
async def harness(tmp_path: Path, backend: str = "sqlite", *, limits: bool = False,
                  sandbox_kwargs: dict[str, Any] | None = None, transport: str = "http",
                  **env: str) -> AsyncIterator[Harness]:
    """`transport`: "http" (Slack POSTs to /slack/events) or "socket_mode" (the bot connects to the sandbox over a
    WebSocket with its app-level token, and every delivery goes over it)."""
    sb = SandboxServer(limits=limits, **(sandbox_kwargs or {}))
    await sb.start(port=0)
    runner: web.AppRunner | None = None
    try:
        async with fresh_database(backend, tmp_path) as (_db, url, schema):
            settings = load_settings({
                "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret,
                "SLACK_API_URL": sb.api_url, "DATABASE_URL": url, "ROLLBOT_ALERT_TOKEN": "test-alert-token",
                # Header re-renders unspaced: tests move a fake clock, and the spacing itself is proven with one
                # (tests/slack/test_call_queue.py).
                "ROLLBOT_SLACK_REFRESH_SECONDS": "0",
                # The bot's own pacing at Slack's tiers runs on wall time, which a fake-clock test would only sit
                # out; it is on where the sandbox enforces the same tiers (`limits`), so pacing is what is tested.
                "ROLLBOT_SLACK_RATE_SCALE": "1" if limits else "0",
                **env,
            })
            clock = FakeClock()
            bot = Rollbot(settings, clock=clock, db_schema=schema)
            await bot.start(scheduler=False)
            runner, port = await start_site(bot.web)
            app_url = f"http://127.0.0.1:{port}"
            socket_mode = await connect_socket_mode(bot, sb) if transport == "socket_mode" else None
            sb.app_url = None if socket_mode else f"{app_url}/slack/events"  # Socket Mode: no silent HTTP fallback
            try:
                yield Harness(sb=sb, bot=bot, clock=clock, app_url=app_url)
                await bot.idle()
                assert_everything_posted_is_valid(sb.state())
            finally:
                await bot.idle()
                if socket_mode:
                    await socket_mode.close_async()
                await runner.cleanup()
                await bot.stop()
    finally:
        await sb.stop()


async def connect_socket_mode(bot: Rollbot, sb: SandboxServer) -> Any:
    """The bot's Socket Mode handler connected to the sandbox (apps.connections.open with the app token)."""
    handler = bot.socket_mode_handler(sb.app_token)
    await handler.connect_async()
    await sb.sockets.wait_connected()
    return handler
