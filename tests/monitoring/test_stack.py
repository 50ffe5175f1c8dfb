"""The real Prometheus and Alertmanager fixtures work: a value the test sets is scraped, a rule on it fires,
Alertmanager delivers the group to a webhook with the alert's labels, and the resolution follows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.core.webserver import start_site
from tests.support.prom import alertmanager, exporter, prometheus, wait_until

pytestmark = pytest.mark.slow  # end to end: scheduled first, so parallel workers finish together


async def test_value_scraped_rule_fires_and_alertmanager_delivers_firing_then_resolved(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "Bearer t0ken"
        received.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner, port = await start_site(app)
    try:
        async with exporter() as exp, alertmanager(tmp_path / "am", webhook_url=f"http://127.0.0.1:{port}/hook",
                                                    bearer_token="t0ken") as am:
            exp.set("queue_depth", 3, service="worker")
            rules = [{"alert": "QueueDeep", "expr": "queue_depth > 10", "labels": {"severity": "critical"}}]
            async with prometheus(tmp_path / "prom", targets=[exp.target], rules=rules, alertmanager=am.url) as prom:
                assert await prom.wait_for_value("queue_depth", lambda v: v == 3, "the first scrape") == 3
                exp.set("queue_depth", 42, service="worker")
                firing = (await wait_until(lambda: _status(received, "firing"), "a firing notification"))[0]
                assert firing["commonLabels"] == {"alertname": "QueueDeep", "service": "worker", "severity": "critical",
                                                  "instance": exp.target, "job": "app"}
                assert [a["alertname"] for a in [x["labels"] for x in await am.alerts()]] == ["QueueDeep"]
                exp.set("queue_depth", 1, service="worker")
                await wait_until(lambda: _status(received, "resolved"), "a resolved notification")
    finally:
        await runner.cleanup()


async def _status(received: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
    return [r for r in received if r["status"] == status]
