"""Shared pieces for the executions tests: a loopback health endpoint the traffic gate probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web


@dataclass
class HealthServer:
    url: str = ""
    fail_from: int = 10**9  # the probe number (1-based) from which it answers 503
    probes: list[int] = field(default_factory=list)  # status answered to each probe


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    """A real aiohttp server on 127.0.0.1 (port 0) whose /health starts failing from probe `fail_from`."""
    srv = HealthServer()

    async def probe(_: web.Request) -> web.Response:
        status = 503 if len(srv.probes) + 1 >= srv.fail_from else 200
        srv.probes.append(status)
        return web.Response(status=status, text="ok" if status == 200 else "error budget exhausted")

    app = web.Application()
    app.router.add_get("/health", probe)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    srv.url = f"http://{host}:{port}/health"
    try:
        yield srv
    finally:
        await runner.cleanup()
