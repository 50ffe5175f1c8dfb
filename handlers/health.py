"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from sqlalchemy import func, text
from sqlmodel import select

from bot.store.models import Execution, Incident

if TYPE_CHECKING:
    from handlers.app import App


def add_routes(app: web.Application, bot: App) -> None:
    async def slack_state() -> str:
        """Slack's answer to auth.test, kept in the slack_up gauge. It is reported, never a readiness failure: a
        Slack blip would otherwise take every replica out of the load balancer and drop alert webhooks, while
        the outbox and timers already carry the owed work over the blip."""
        try:
            await bot.svc.slack.client.auth_test()
        except Exception as exc:  # a probe reports every failure rather than raising
            bot.metrics.slack_up.set(0)
            return f"error: {type(exc).__name__}"
        bot.metrics.slack_up.set(1)
        return "ok"

    async def healthz(_: web.Request) -> web.Response:
        """The process is up and serving (it starts serving once the store is migrated); Slack's state as detail."""
        body: dict[str, object] = {"ok": bot.ready, "status": "up" if bot.ready else "starting"}
        if bot.ready:
            body["slack"] = await slack_state()
        return web.json_response(body, status=200 if bot.ready else 503)

    async def readyz(_: web.Request) -> web.Response:
        """Ready to take traffic: the database answers. Redis (when configured) and Slack are shown but do not
        make the replica unready: without Redis it works in-process, and Slack's blips are retried."""
        checks: dict[str, str] = {}
        try:
            async with bot.db.session() as session:
                await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            checks["database"] = "ok"
        except Exception as exc:  # a readiness probe reports every failure rather than raising
            checks["database"] = f"error: {type(exc).__name__}"
        ping = getattr(bot.svc.coord, "ping", None)
        if ping is not None:
            try:
                checks["redis"] = "ok" if await ping() else "error"
            except Exception as exc:
                checks["redis"] = f"error: {type(exc).__name__}"
        ok = bot.ready and checks["database"] == "ok"
        return web.json_response({"ok": ok, "checks": {**checks, "slack": await slack_state()}},
                                 status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        await slack_state()
        async with bot.db.session() as session:
            open_count = (await session.exec(select(func.count()).select_from(Incident).where(
                Incident.status == "open"))).one()
            states = (await session.exec(select(Execution.state, func.count()).group_by(Execution.state))).all()
        bot.metrics.open_incidents.set(open_count)
        for state, n in states:
            bot.metrics.executions.labels(state).set(n)
        bot.metrics.timer_lateness.set(bot.svc.timers.max_lateness)
        bot.metrics.outbox_parked.set(await bot.svc.timers.parked())
        return web.Response(body=bot.metrics.render(), content_type="text/plain", charset="utf-8")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
