"""The one HTTP endpoint Slack calls (commands, interactivity, events), and Socket Mode when configured."""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

from bot.logging_setup import request_id

if TYPE_CHECKING:
    from bot.app import Rollbot


def register(bot: Rollbot) -> None:
    @bot.bolt.event("app_mention")
    async def on_mention(ack, event, say) -> None:  # type: ignore[no-untyped-def]
        await ack()
        await say(text="Type `/rollback help` to see what I can do.", thread_ts=event.get("ts"))

    @bot.bolt.event("member_joined_channel")
    async def on_join(ack) -> None:  # type: ignore[no-untyped-def]
        await ack()


RETRY_MEMORY_SECONDS = 3600  # Slack retries an event for up to about an hour


def request_kind(body: str) -> str:
    if body.startswith("payload="):
        match = re.search(r"%22type%22%3A%22([a-z_]+)%22", body[:400])
        return match.group(1) if match else "interactive"
    if body.startswith("{"):
        return "event"
    return "command" if "command=" in body else "other"


def add_routes(app: web.Application, bot: Rollbot) -> None:
    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        request_id.set(request.headers.get("X-Slack-Request-Timestamp", "") + ":" + secrets.token_hex(3))
        bolt_request = await to_bolt_request(request)
        kind = request_kind(bolt_request.raw_body)
        bot.metrics.requests.labels(kind).inc()
        if kind == "event" and await _seen_before(bot, bolt_request.raw_body):
            bot.metrics.duplicates.inc()
            return web.Response(status=200, text="")  # a retry of a delivery already taken: ack, do nothing
        bolt_response = await bot.bolt.async_dispatch(bolt_request)
        response = await to_aiohttp_response(bolt_response)
        bot.metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return response

    app.router.add_post("/slack/events", slack_events)


async def _seen_before(bot: Rollbot, body: str) -> bool:
    """Events API deliveries are deduplicated by event_id across replicas; a retry (X-Slack-Retry-Num) of one
    already taken is answered at once and not processed twice."""
    try:
        event_id = json.loads(body).get("event_id")
    except (json.JSONDecodeError, AttributeError):
        return False
    if not event_id:
        return False
    return not await bot.svc.coord.first_time(f"slack-event:{event_id}", RETRY_MEMORY_SECONDS)
