"""Shared pieces for the actions tests: the sample scripts, a loopback HTTP server, process liveness."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_DIR = ROOT / "examples" / "launch"
SCRIPTS_DIR = LAUNCH_DIR / "scripts"
FAST = {"ROLLBOT_SCRIPT_SPEED": "200"}  # the sample scripts' pauses, 200 times shorter


def pid_alive(pid: int) -> bool:
    """A process counts as alive unless it is gone or a zombie (dead, waiting for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def pid_exists(pid: int) -> bool:
    """Still in the process table at all, zombies included."""
    return Path(f"/proc/{pid}").exists()


@dataclass
class LocalServer:
    url: str
    hits: Counter[str] = field(default_factory=Counter)
    received: list[object] = field(default_factory=list)
    state: dict[str, object] = field(default_factory=dict)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    """A real aiohttp server on 127.0.0.1, port chosen by the kernel."""
    srv = LocalServer(url="")

    async def ok(request: web.Request) -> web.Response:
        srv.hits["ok"] += 1
        return web.json_response({"status": "rolled back", "token": "xoxb-1111-2222-abcdefghij"})

    async def flaky(request: web.Request) -> web.Response:
        srv.hits["flaky"] += 1
        failures = int(request.query.get("fail", "2"))
        if srv.hits["flaky"] <= failures:
            return web.Response(status=503, text="deploy service busy")
        return web.Response(status=202, text="accepted")

    async def status(request: web.Request) -> web.Response:
        srv.hits["status"] += 1
        return web.Response(status=int(request.match_info["code"]), text="as requested")

    async def echo(request: web.Request) -> web.Response:
        srv.hits["echo"] += 1
        body = await request.json()
        srv.received.append({"path": request.path, "json": body, "auth": request.headers.get("Authorization")})
        return web.json_response(body, status=201)

    async def slow(request: web.Request) -> web.Response:
        srv.hits["slow"] += 1
        await asyncio.sleep(int(request.query.get("ms", "300")) / 1000)
        return web.Response(text="late")

    async def health(request: web.Request) -> web.Response:
        # The error budget the traffic gate sees depends on how much traffic was restored.
        srv.hits["health"] += 1
        unhealthy_from = int(srv.state.get("unhealthy_from", 101))  # type: ignore[arg-type]
        current = int(srv.state.get("traffic", 0))  # type: ignore[arg-type]
        return web.Response(status=503 if current >= unhealthy_from else 200, text=f"traffic {current}")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_post("/ok", ok)
    app.router.add_route("*", "/flaky", flaky)
    app.router.add_route("*", "/status/{code}", status)
    app.router.add_post("/releases/{version}/rollback", echo)
    app.router.add_get("/slow", slow)
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, shutdown_timeout=0.2)  # do not wait out deliberately slow handlers
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    srv.url = f"http://{host}:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()
