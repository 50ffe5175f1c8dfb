"""Serving an aiohttp application on a port (0: any free one), shared by `serve`, the sandbox, the demo and tests."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def start_site(app: web.Application, host: str = "127.0.0.1", port: int = 0,
                     **runner_kwargs: Any) -> tuple[web.AppRunner, int]:
    """Start `app`; returns its runner (call `cleanup()` to stop) and the port it really listens on."""
    runner = web.AppRunner(app, **runner_kwargs)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def listen_url(host: str, port: int) -> str:
    """The address that reaches a server bound to `host` from this machine (a wildcard is reached on loopback)."""
    local = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    return f"http://{local}:{port}"
