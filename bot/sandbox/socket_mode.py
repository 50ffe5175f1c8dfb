"""Socket Mode: `apps.connections.open` hands out a WebSocket URL on the sandbox; deliveries then go over it as
envelopes with an `envelope_id`, and the app's acknowledgement (with its payload) is matched to them."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

from aiohttp import WSMsgType, web

ENVELOPE_TYPES = {"command": "slash_commands", "block_actions": "interactive", "view_submission": "interactive",
                  "event": "events_api"}


class SocketHub:
    def __init__(self) -> None:
        self.tickets: set[str] = set()
        self.connections: list[web.WebSocketResponse] = []
        self.pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0
        self._arrived = asyncio.Event()

    def issue_url(self, base_url: str) -> str:
        ticket = secrets.token_hex(8)
        self.tickets.add(ticket)
        return base_url.replace("http://", "ws://") + f"/_sandbox/socket?ticket={ticket}"

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self.connections)

    async def wait_connected(self, timeout: float = 30.0) -> None:
        """Until an app has connected (its `hello` sent); TimeoutError after `timeout` seconds."""
        await asyncio.wait_for(self._arrived.wait(), timeout)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            raise web.HTTPUnauthorized(text="invalid ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self._arrived.set()
        await ws.send_str(json.dumps({"type": "hello", "num_connections": len(self.connections),
                                      "debug_info": {"host": "sandbox", "approximate_connection_time": 18060},
                                      "connection_info": {"app_id": "A0ROLLBOT"}}))
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                ack = json.loads(message.data)
            except json.JSONDecodeError:
                continue
            future = self.pending.pop(str(ack.get("envelope_id")), None)
            if future is not None and not future.done():
                future.set_result(ack)
        self.connections.remove(ws)
        return ws

    async def deliver(self, kind: str, payload: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one envelope to a connected app (round robin) and wait for its ack; shaped like an HTTP delivery."""
        live = [ws for ws in self.connections if not ws.closed]
        ws = live[self._next % len(live)]
        self._next += 1
        envelope_id = secrets.token_hex(16)
        envelope = {"envelope_id": envelope_id, "type": ENVELOPE_TYPES[kind], "payload": payload,
                    "accepts_response_payload": kind in ("command", "view_submission"), "retry_attempt": 0,
                    "retry_reason": ""}
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[envelope_id] = future
        started = time.perf_counter()
        await ws.send_str(json.dumps(envelope))
        try:
            ack = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            self.pending.pop(envelope_id, None)
            return {"kind": kind, "status": 0, "body": None, "ms": round((time.perf_counter() - started) * 1000, 2),
                    "via": "socket_mode"}
        return {"kind": kind, "status": 200, "body": ack.get("payload"), "envelope_id": envelope_id,
                "ms": round((time.perf_counter() - started) * 1000, 2), "via": "socket_mode"}
