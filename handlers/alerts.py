"""Alert webhooks: authenticate, bound the body, parse, and hand the alerts to the engine.

A malformed or unauthenticated request gets a JSON error and changes nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

from bot.alerts.auth import MAX_BODY_BYTES, AlertAuth, AlertAuthError
from bot.alerts.model import SOURCES, AlertParseError
from bot.alerts.parsers import parse

if TYPE_CHECKING:
    from bot.core.events import Outbound
    from handlers.app import App


def alert_auth(bot: App) -> AlertAuth:
    s = bot.settings
    return AlertAuth(
        token=s.alert_token.get_secret_value() if s.alert_token else None,
        pagerduty_secrets=(s.pagerduty_secret.get_secret_value(),) if s.pagerduty_secret else (),
    )


def add_routes(app: web.Application, bot: App) -> None:
    auth = alert_auth(bot)

    async def receive(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in SOURCES:
            return web.json_response({"error": f"unknown alert source {source!r}", "known": list(SOURCES)}, status=404)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return web.json_response({"error": "body larger than 1 MiB"}, status=413)
        try:
            body = await request.content.read(MAX_BODY_BYTES + 1)
        except ValueError:
            return web.json_response({"error": "body larger than 1 MiB"}, status=413)
        if len(body) > MAX_BODY_BYTES:
            return web.json_response({"error": "body larger than 1 MiB"}, status=413)
        try:
            auth.check(source, request.headers, body, now=bot.clock.now())
        except AlertAuthError as exc:
            return web.json_response({"error": "unauthorized", "detail": str(exc)}, status=401)
        try:
            alerts = parse(source, json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return web.json_response({"error": "malformed alert payload", "detail": f"not JSON: {exc}"}, status=400)
        except AlertParseError as exc:
            return web.json_response(exc.to_json(), status=400)
        result = await bot.intake.receive(alerts)
        counted = {"opened": len(result.opened), "attached": len(result.attached),
                   "resolved": len(result.resolved_noted), "repeat": result.repeats}
        for item in result.unmatched:
            counted[item.get("outcome", "unmatched")] = counted.get(item.get("outcome", "unmatched"), 0) + 1
        for outcome, n in counted.items():
            if n:
                bot.metrics.alerts.labels(source, outcome).inc(n)
        for received_id, reason in result.triage:  # after the answer; a timer posts any this process cannot
            bot.spawn(bot.intake.post_triage(received_id, reason))
        for incident_id, rest in result.declaring.items():
            bot.spawn(_declare_and_open(bot, incident_id, rest))
        return web.json_response(result.as_json(), status=202 if result.opened or result.attached or result.repeated else 200)

    app.router.add_post("/alerts/{source}", receive)


async def _declare_and_open(bot: App, incident_id: str, rest: Outbound) -> None:
    """After the answer: the rest of the declaration (its outbox row's fast path), then the war room. Should the
    rest fail here, the outbox worker writes it later and the war-room promise it schedules opens the room."""
    await bot.svc.events.deliver(rest)
    await bot.warroom.open(incident_id)
