"""`rollbot serve`: the bot over HTTP (and Socket Mode when SLACK_APP_TOKEN is set), until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from bot.app import Rollbot
from bot.core.config import Settings
from bot.core.heap import settle
from bot.core.logging_setup import configure as configure_logging
from bot.core.webserver import listen_url

log = logging.getLogger(__name__)
SHUTDOWN_GRACE_SECONDS = 8  # inside the 10 s a scheduler gives a stopping replica


async def serve(settings: Settings) -> None:
    configure_logging(settings.secret_values())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bot = Rollbot(settings)
    await bot.start()
    try:
        await bot.intake.rehearse()  # before the first alert can arrive
    except Exception:  # a warm-up only: the first alert then pays for it, the bot still serves
        log.exception("the start-up rehearsal of the first alert failed")
    runner = web.AppRunner(bot.web, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    log.info("start-up heap settled: %d objects kept out of the garbage collector", settle())
    socket_mode = None
    if settings.slack_app_token:
        socket_mode = bot.socket_mode_handler(settings.slack_app_token.get_secret_value())
        await socket_mode.connect_async()
    log.info("rollbot serving on %s port %s%s", settings.host, settings.port, " and Socket Mode" if socket_mode else "")
    print(f"rollbot listening on {listen_url(settings.host, settings.port)} (POST /slack/events, /alerts/<source>)"
          f"{'' if settings.host != '0.0.0.0' else ' on every interface (ROLLBOT_HOST=0.0.0.0)'}", flush=True)
    await stop.wait()
    log.info("shutting down: no new requests, finishing acks and background work")
    if socket_mode:
        await socket_mode.close_async()
    await runner.cleanup()  # stops accepting, lets in-flight requests finish
    await bot.stop()
