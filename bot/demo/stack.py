"""A workspace and a bot together on this machine: the sandbox, Rollbot on SQLite in a work directory, and the
loopback health endpoint the runbook's checks probe. `rollbot demo` and `rollbot sandbox --with-bot` share it."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.app import Rollbot
from bot.core.clock import Clock, ScaledClock, SystemClock
from bot.core.config import load_settings
from bot.core.webserver import start_site
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.prometheus import CHECK_URL_ENV_PREFIX
from bot.sandbox.server import SandboxServer

ALERT_TOKEN = "demo-alert-token"


@dataclass
class Stack:
    sb: SandboxServer
    bot: Rollbot
    clock: Clock
    port: int  # the bot's HTTP port
    _bot_runner: web.AppRunner
    _health: web.AppRunner

    async def stop(self) -> None:
        await self.bot.idle()
        await self._bot_runner.cleanup()
        await self.bot.stop()
        await self.sb.stop()
        await self._health.cleanup()


async def health_endpoint() -> web.AppRunner:
    """The service the traffic checks probe: healthy and fast, as production is after a good rollback."""
    async def healthy(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", healthy)
    runner, port = await start_site(app)
    url = f"http://127.0.0.1:{port}/health"
    for action in load_runbook(DEFAULT_RUNBOOK).actions:
        if action.kind == "check":
            os.environ[CHECK_URL_ENV_PREFIX + action.id.upper()] = url
    return runner


async def start_stack(workdir: Path, speed: float | None = None, sandbox_port: int = 0) -> Stack:
    """`speed`: simulated seconds per real second (None: the real clock, for a drill a person runs)."""
    sb = SandboxServer(limits=True, limit_scale=speed or 1.0)
    await sb.start(port=sandbox_port)
    health = await health_endpoint()
    clock: Clock = ScaledClock(speed) if speed else SystemClock()
    settings = load_settings({}, slack_bot_token=sb.bot_token, slack_signing_secret=sb.signing_secret,
                             slack_api_url=sb.api_url, database_url=f"sqlite:///{workdir / 'rollbot.db'}",
                             alert_token=ALERT_TOKEN, tick_seconds=0.2 if speed else 1.0,
                             slack_rate_scale=speed or 1.0)
    bot = Rollbot(settings, clock=clock)
    await bot.start()
    runner, port = await start_site(bot.web)
    sb.app_url = f"http://127.0.0.1:{port}/slack/events"
    return Stack(sb=sb, bot=bot, clock=clock, port=port, _bot_runner=runner, _health=health)


async def until_interrupted() -> None:
    """Wait for Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
