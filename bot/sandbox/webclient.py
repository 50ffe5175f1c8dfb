"""The sandbox's face: a Slack-like web client at `/` (static files shipped as package data, no CDN), the
workspace state it renders, and a server-sent event stream that tells open pages when the workspace changed.

The page acts only through the control API (`/_sandbox/command|click|submit|say|close`), so a person clicking
in the browser reaches the app exactly as the tests and the demo's simulated responders do."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

STATIC = {"index.html": "text/html", "app.js": "text/javascript", "app.css": "text/css"}
# The page runs only its own script: even if some text escaped the renderer, no inline script or handler would run.
CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: http: https:; connect-src 'self'"
HEARTBEAT_SECONDS = 15.0


class ChangeFeed:
    """A version number that moves whenever the workspace may have changed, and the pages waiting on it."""

    def __init__(self) -> None:
        self.version = 0
        self._waiting: set[asyncio.Event] = set()
        self.closed = False

    def bump(self) -> None:
        self.version += 1
        for event in self._waiting:
            event.set()

    def close(self) -> None:
        self.closed = True
        self.bump()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        event = asyncio.Event()
        self._waiting.add(event)
        try:
            sent = -1
            while not self.closed:
                if sent != self.version:
                    sent = self.version
                    await response.write(f"data: {sent}\n\n".encode())
                event.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), HEARTBEAT_SECONDS)
                if sent == self.version and not self.closed:
                    await response.write(b": keep-alive\n\n")  # finds pages that went away
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._waiting.discard(event)
        return response


def _static(name: str) -> bytes:
    return resources.files("bot.sandbox").joinpath("web", name).read_bytes()


def add_routes(app: web.Application, feed: ChangeFeed, view: Callable[[], dict[str, Any]]) -> None:
    """The page, its files, the state it renders (`view`, the server's) and the change stream."""
    async def page(request: web.Request) -> web.Response:
        name = request.match_info.get("name", "index.html")
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_static(name), content_type=STATIC[name],
                            headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})

    async def ui_state(_: web.Request) -> web.Response:
        return web.json_response(view())

    app.router.add_get("/", page)
    app.router.add_get("/_sandbox/web/{name}", page)
    app.router.add_get("/_sandbox/ui/state", ui_state)
    app.router.add_get("/_sandbox/stream", feed.stream)
