"""Liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bot.app import Rollbot


def add_routes(app: web.Application, bot: Rollbot) -> None:
    async def healthz(_: web.Request) -> web.Response:
        if not bot.ready:
            return web.json_response({"ok": False, "status": "starting"}, status=503)
        return web.json_response({"ok": True})

    app.router.add_get("/healthz", healthz)
