"""Slack's deliveries to the app: signed HTTP POSTs (alternating over several app URLs) or, once the app holds a
Socket Mode connection, envelopes over it; each one recorded for the transcript."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import aiohttp

from bot.sandbox.signing import signed_headers
from bot.sandbox.socket_mode import SocketHub


class AppDelivery:
    def __init__(self, *, clock: Callable[[], float], sockets: SocketHub, app_url: Callable[[], str | None],
                 signing_secret: Callable[[], str]) -> None:
        """`app_url` and `signing_secret` are read at each delivery: tests and the demo point the sandbox at the
        app after it started."""
        self.clock = clock
        self.sockets = sockets
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.deliveries: list[dict[str, Any]] = []
        self.session: aiohttp.ClientSession | None = None
        self._count = 0

    @property
    def reachable(self) -> bool:
        """Whether there is an app to deliver to: an app URL, or a Socket Mode connection."""
        return bool(self.app_url() or self.sockets.connected)

    def open(self) -> None:
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        if self.session:
            await self.session.close()

    async def deliver(self, body: bytes, content_type: str, kind: str, extra_headers: dict[str, str] | None = None,
                      timeout: float = 10.0) -> dict[str, Any]:
        # When and what a person did, on the same clock as the calls: benches count clicks between bot messages.
        seen = {"at": self.clock(), **_what(body, content_type)}
        if self.sockets.connected:
            result = await self.sockets.deliver(kind, _socket_payload(body, content_type), timeout)
            self.deliveries.append({**result, **seen})
            return result
        app_url = self.app_url()
        if not app_url:
            raise RuntimeError("the sandbox has no app URL to deliver to (--app-url)")
        assert self.session is not None
        # Several comma-separated URLs: deliveries alternate between them, like a load balancer over replicas.
        urls = app_url.split(",")
        url = urls[self._count % len(urls)]
        self._count += 1
        headers = signed_headers(self.signing_secret(), int(time.time()), body, content_type) | (extra_headers or {})
        started = time.perf_counter()
        try:
            async with self.session.post(url, data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                text = await response.text()
                status = response.status
        except TimeoutError:
            status, text = 0, ""
        elapsed = round((time.perf_counter() - started) * 1000, 2)
        try:
            parsed: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = text
        result = {"kind": kind, "status": status, "body": parsed, "ms": elapsed, "url": url}
        self.deliveries.append({**result, **seen})
        return result


def _socket_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The same content Slack would POST, as the JSON payload of a Socket Mode envelope."""
    if content_type == "application/json":
        return dict(json.loads(body))
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return dict(json.loads(form["payload"])) if "payload" in form else form


def _what(body: bytes, content_type: str) -> dict[str, Any]:
    """The user and the action (or command) of a delivery, for the transcript."""
    try:
        if content_type == "application/json":
            return {}
        form = parse_qs(body.decode())
        if "payload" not in form:
            return {"user": form.get("user_id", [""])[0], "action": form.get("command", [""])[0]}
        payload = json.loads(form["payload"][0])
        actions = payload.get("actions") or [{}]
        action = actions[0].get("action_id") or (payload.get("view") or {}).get("callback_id", "")
        return {"user": (payload.get("user") or {}).get("id", ""), "action": action}
    except (ValueError, KeyError, IndexError, AttributeError):
        return {}
