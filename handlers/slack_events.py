"""The one HTTP endpoint Slack calls (commands, interactivity, events), and Socket Mode when configured."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.core.logging_setup import request_id

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    @bot.bolt.event("app_mention")
    async def on_mention(ack, event, say) -> None:  # type: ignore[no-untyped-def]
        await ack()
        await say(text="Type `/rollback help` to see what I can do.", thread_ts=event.get("ts"))


RETRY_MEMORY_SECONDS = 3600  # Slack retries an event for up to about an hour
# Metric labels: a fixed set, so a sender cannot grow the label space.
KINDS = frozenset({"block_actions", "view_submission", "view_closed", "shortcut", "message_action",
                   "block_suggestion", "interactive", "event", "command", "other"})


def request_kind(body: str) -> str:
    if body.startswith("payload="):
        match = re.search(r"%22type%22(?:\+|%20)*%3A(?:\+|%20)*%22([a-z_]+)%22", body[:400])
        kind = match.group(1) if match else "interactive"
        return kind if kind in KINDS else "interactive"
    if body.startswith("{"):
        return "event"
    return "command" if "command=" in body else "other"


def add_routes(app: web.Application, bot: App) -> None:
    assert bot.settings.slack_signing_secret
    verifier = SignatureVerifier(bot.settings.slack_signing_secret.get_secret_value())

    async def slack_events(request: web.Request) -> web.Response:
        started = time.perf_counter()
        request_id.set(request.headers.get("X-Slack-Request-Timestamp", "") + ":" + secrets.token_hex(3))
        bolt_request = await to_bolt_request(request)
        # The signature first: nothing reads an unsigned body (no de-duplication key, no metric label from it).
        headers = {k: v[0] for k, v in bolt_request.headers.items() if v}
        if not verifier.is_valid_request(bolt_request.raw_body, headers):
            bot.metrics.requests.labels("unsigned").inc()
            return web.json_response({"error": "invalid request"}, status=401)
        kind = request_kind(bolt_request.raw_body)
        if not await _take(bot, kind, lambda: _event_id(bolt_request.raw_body)):
            return web.Response(status=200, text="")  # a retry of a delivery already taken: ack, do nothing
        bolt_response = await bot.bolt.async_dispatch(bolt_request)
        response = await to_aiohttp_response(bolt_response)
        bot.metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)
        return response

    app.router.add_post("/slack/events", slack_events)


async def _take(bot: App, kind: str, event_id: Callable[[], str | None]) -> bool:
    """Count the request; False for a retried Events API delivery already taken (by any replica, either mode)."""
    bot.metrics.requests.labels(kind).inc()
    if kind == "event" and await _seen_before(bot, event_id()):
        bot.metrics.duplicates.inc()
        return False
    return True


def _event_id(body: str) -> str | None:
    try:
        event_id = json.loads(body).get("event_id")
    except (json.JSONDecodeError, AttributeError):
        return None
    return str(event_id) if event_id else None


async def _seen_before(bot: App, event_id: str | None) -> bool:
    """Events API deliveries are deduplicated by event_id across replicas; a retry (X-Slack-Retry-Num over HTTP,
    `retry_attempt` in Socket Mode) of one already taken is answered at once and not processed twice."""
    if not event_id:
        return False
    return not await bot.svc.coord.first_time(f"slack-event:{event_id}", RETRY_MEMORY_SECONDS)


SOCKET_KINDS = {"events_api": "event", "slash_commands": "command"}


def socket_request_kind(envelope_type: str, payload: dict[str, Any]) -> str:
    """The same kinds as over HTTP: event, command, or the interactive payload's type (block_actions, …)."""
    if envelope_type == "interactive":
        return str(payload.get("type") or "interactive")
    return SOCKET_KINDS.get(envelope_type, "other")


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode adapter with what the HTTP route does around each request: a request id, the request
    and ack-latency metrics, and the Events API de-duplication (a duplicate envelope is acked, not processed)."""

    def __init__(self, bot: App, app_token: str) -> None:
        super().__init__(bot.bolt, app_token)
        self.bot = bot

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        request_id.set(f"socket:{req.envelope_id}")
        payload = req.payload if isinstance(req.payload, dict) else {}
        kind = socket_request_kind(req.type, payload)
        event_id = payload.get("event_id")
        if not await _take(self.bot, kind, lambda: str(event_id) if event_id else None):
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        bolt_response = await run_async_bolt_app(self.app, req)
        await send_async_response(client, req, bolt_response, started)
        self.bot.metrics.ack_seconds.labels(kind).observe(time.perf_counter() - started)


def socket_mode_handler(bot: App, app_token: str) -> SocketModeHandler:
    return SocketModeHandler(bot, app_token)
