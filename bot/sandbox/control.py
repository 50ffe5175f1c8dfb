"""The control API at /_sandbox/: what tests, the demo and the web client use to act as people (command, click,
say, submit, close, event), to set faults, limits and group members, to read the state, and to upload and fetch
files (the upload URL files.getUploadURLExternal hands out)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from bot.sandbox import payloads
from bot.sandbox.faults import Faults
from bot.sandbox.limits import RateLimits
from bot.sandbox.webclient import ChangeFeed
from bot.sandbox.workspace import Workspace


class Sandbox(Protocol):
    """What the control API drives (the SandboxServer), without importing it."""

    ws: Workspace
    faults: Faults
    limits: RateLimits
    feed: ChangeFeed

    async def command(self, user: str, channel: str, command: str, text: str) -> dict[str, Any]: ...

    async def click(self, user: str, channel: str, ts: str, *, action_id: str | None = None, text: str | None = None,
                    value: str | None = None, block_id: str | None = None) -> dict[str, Any]: ...

    async def say(self, user: str, channel_id: str, text: str, thread_ts: str | None = None) -> dict[str, Any]: ...

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]: ...

    def close_view(self, user: str, view_id: str) -> dict[str, Any]: ...

    async def event(self, event: dict[str, Any]) -> dict[str, Any]: ...

    def set_group_members(self, group: str, users: list[str]) -> None: ...

    def state(self) -> dict[str, Any]: ...


class ControlApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def add_routes(self, app: web.Application) -> None:
        sb = self.sandbox
        app.router.add_post("/_sandbox/command", self._control(lambda b: sb.command(
            b["user"], b["channel"], b.get("command", "/rollback"), b.get("text", ""))))
        app.router.add_post("/_sandbox/click", self._control(lambda b: sb.click(
            b["user"], b["channel"], b["ts"], action_id=b.get("action_id"), text=b.get("text"), value=b.get("value"),
            block_id=b.get("block_id"))))
        app.router.add_post("/_sandbox/say", self._control(lambda b: sb.say(
            b["user"], b["channel"], b["text"], thread_ts=b.get("thread_ts"))))
        app.router.add_post("/_sandbox/close", self._control(lambda b: sb.close_view(b["user"], b["view_id"])))
        app.router.add_post("/_sandbox/submit", self._control(lambda b: sb.submit(b["user"], b["view_id"],
                                                                                 b.get("values", {}))))
        app.router.add_post("/_sandbox/event", self._control(lambda b: sb.event(b)))
        app.router.add_post("/_sandbox/faults", self._control(self._set_faults))
        app.router.add_post("/_sandbox/limits", self._control(self._set_limits))
        app.router.add_post("/_sandbox/usergroups/{group}", self._set_group)
        app.router.add_get("/_sandbox/state", self._state)
        app.router.add_post("/_sandbox/upload/{file_id}", self._upload)
        app.router.add_get("/_sandbox/files/{file_id}", self._file)

    def _control(self, action: Callable[[dict[str, Any]], Any]) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return web.json_response({"error": "body must be JSON"}, status=400)
            try:
                result = action(body)
                if asyncio.iscoroutine(result):
                    result = await result
            except (KeyError, ValueError, payloads.ClickError, RuntimeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response(result if result is not None else {"ok": True})
        return handler

    def _set_faults(self, body: dict[str, Any]) -> dict[str, Any]:
        self.sandbox.faults.apply(body)
        return {"ok": True}

    def _set_limits(self, body: dict[str, Any]) -> dict[str, Any]:
        if "enabled" in body:
            self.sandbox.limits.enabled = bool(body["enabled"])
        if "scale" in body:
            self.sandbox.limits.scale = float(body["scale"])
        return {"ok": True}

    async def _set_group(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.sandbox.set_group_members(request.match_info["group"], body["users"])
        except KeyError as exc:
            return web.json_response({"error": f"unknown {exc}"}, status=400)
        self.sandbox.feed.bump()
        return web.json_response({"ok": True})

    async def _state(self, _: web.Request) -> web.Response:
        return web.json_response(self.sandbox.state())

    async def _upload(self, request: web.Request) -> web.Response:
        record = self.sandbox.ws.files.get(request.match_info["file_id"])
        if record is None:
            return web.Response(status=404, text="file_not_found")
        record["content"] = await request.read()
        record["uploaded"] = True
        self.sandbox.feed.bump()
        return web.Response(text=f"OK - {len(record['content'])}")

    async def _file(self, request: web.Request) -> web.Response:
        record = self.sandbox.ws.files.get(request.match_info["file_id"])
        if record is None or not record["uploaded"]:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=record["content"], content_type="application/octet-stream")
