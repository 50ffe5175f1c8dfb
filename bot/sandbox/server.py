"""The sandbox server: Slack's Web API at /api/<method>, and Slack's side of the conversation toward the app
(signed slash commands, clicks, view submissions, events) driven through a control API at /_sandbox/.

The parts live beside it: the methods in webapi*, deliveries to the app in delivery, response_url in
response_urls, people's actions in user_actions, the /_sandbox/ routes in control."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bot.core.webserver import listen_url, start_site
from bot.sandbox import scopes as method_scopes
from bot.sandbox import webapi_methods, webclient
from bot.sandbox.control import ControlApi
from bot.sandbox.delivery import AppDelivery
from bot.sandbox.faults import LOST_500, LOST_TIMEOUT, Faults
from bot.sandbox.limits import RateLimits
from bot.sandbox.response_urls import ResponseUrls
from bot.sandbox.socket_mode import SocketHub
from bot.sandbox.user_actions import UserActions
from bot.sandbox.webapi import Call, SlackError, WebApi
from bot.sandbox.workspace import Message, load_workspace

# Web API methods that only read: every other successful call tells the web client to look again.
READ_METHODS = frozenset({"auth.test", "chat.getPermalink", "conversations.history", "conversations.info",
                          "conversations.list", "conversations.members", "conversations.replies", "users.info",
                          "users.list", "users.lookupByEmail", "usergroups.users.list", "apps.connections.open"})


class SandboxServer:
    def __init__(self, users_file: Path | str | None = None, *, limits: bool = True, limit_scale: float = 1.0,
                 clock: Callable[[], float] = time.time, bot_token: str | None = None,
                 signing_secret: str | None = None, app_url: str | None = None,
                 scopes: Iterable[str] | None = None) -> None:
        """`scopes`: the bot scopes the installed app was granted (default: manifest.yml's); a method needing
        another answers `missing_scope`, as Slack does."""
        self.clock = clock
        self.ws = load_workspace(users_file)
        self.bot_token = bot_token or f"xoxb-{secrets.randbelow(10**12)}-{secrets.token_hex(12)}"
        self.app_token = f"xapp-1-A0ROLLBOT-{secrets.token_hex(12)}"
        self.signing_secret = signing_secret or secrets.token_hex(16)
        self.app_url = app_url
        self.faults = Faults()
        self.limits = RateLimits(clock=clock, enabled=limits, scale=limit_scale)
        self.api = WebApi(ws=self.ws, now=clock, base_url=lambda: self.base_url,
                          scopes=frozenset(method_scopes.manifest_scopes() if scopes is None else scopes))
        self.methods = webapi_methods.dispatch(self.api)
        self.calls: list[dict[str, Any]] = []
        self.sockets = SocketHub()
        self.feed = webclient.ChangeFeed()
        self.delivery = AppDelivery(clock=clock, sockets=self.sockets, app_url=lambda: self.app_url,
                                    signing_secret=lambda: self.signing_secret)
        self.deliveries = self.delivery.deliveries
        self.responses = ResponseUrls(ws=self.ws, clock=clock, next_ts=self.api.next_ts,
                                      base_url=lambda: self.base_url, changed=self.feed.bump)
        self.response_urls = self.responses.entries
        self.user_actions = UserActions(ws=self.ws, api=self.api, clock=clock, delivery=self.delivery,
                                        responses=self.responses, changed=self.feed.bump)
        self._stopping = asyncio.Event()  # hung calls end with the sandbox, so stopping never waits them out
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.host = "127.0.0.1"

    @property
    def scopes(self) -> frozenset[str]:
        return self.api.scopes

    @scopes.setter
    def scopes(self, granted: Iterable[str]) -> None:
        self.api.scopes = frozenset(granted)

    # --- lifecycle -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return listen_url(self.host, self.port)

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def web_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        ControlApi(self).add_routes(app)
        app.router.add_get("/_sandbox/socket", self.sockets.handle)
        app.router.add_post("/_sandbox/respond/{token}", self.responses.respond)
        webclient.add_routes(app, self.feed, self.ui_view)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner, self.port = await start_site(self.web_app(), host, port)
        self.host = host
        self.delivery.open()

    async def stop(self) -> None:
        self.feed.close()  # open pages' event streams end, so the runner's cleanup does not wait on them
        self._stopping.set()
        await self.delivery.close()
        if self._runner:
            await self._runner.cleanup()

    # --- the Web API -----------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        method = request.match_info["method"]
        args = await _arguments(request)
        status, body, headers = await self._answer(request, method, args)
        elapsed = (time.perf_counter() - started) * 1000
        self.calls.append({"method": method, "args": _loggable(args), "ms": round(elapsed, 2), "status": status,
                           "ok": bool(body.get("ok")), "error": body.get("error"), "at": self.clock()})
        if body.get("ok") and method not in READ_METHODS:
            self.feed.bump()
        return web.json_response(body, status=status, headers=headers)

    async def _hang(self) -> None:
        """No answer for hang_s, or until the sandbox stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self.faults.hang_s)

    async def _answer(self, request: web.Request, method: str,
                      args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        token = _token(request, args)
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if method == "apps.connections.open":  # the one method that takes the app-level token
            if token == self.bot_token:
                return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
            if token != self.app_token:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            return 200, {"ok": True, "url": self.sockets.issue_url(self.base_url)}, {}
        if token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        delay = self.faults.latency()
        if delay:
            await asyncio.sleep(delay)
        fault = self.faults.pick(method, args)
        if fault is not None and fault.status in (LOST_500, LOST_TIMEOUT):
            # Slack did the work but the answer never reached the app: a 5xx from a proxy, or a timeout.
            handler = self.methods.get(method)
            if handler is not None:
                with contextlib.suppress(SlackError):
                    await handler(Call(args=args, user=self.ws.bot.id))
            if fault.status == LOST_TIMEOUT:
                await self._hang()
            return 500, {"ok": False, "error": "internal_error"}, {}
        if fault is not None:
            if fault.status == 429:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
            if fault.status == 0:
                await self._hang()
            return 500, {"ok": False, "error": "internal_error"}, {}
        handler = self.methods.get(method)
        if handler is None:
            return 404, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        wait = self.limits.check(method, str(args.get("channel") or "") or None)
        if wait is not None:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(int(wait))}
        needed = method_scopes.missing(method, self.scopes, self._conversation_kind(method, args))
        # Slack names the token's scopes, and those the method accepts, on every answer.
        provided = ",".join(sorted(self.scopes))
        headers = {"x-oauth-scopes": provided,
                   "x-accepted-oauth-scopes": ",".join(method_scopes.ACCEPTED.get(method, ()))}
        if needed is not None:
            return 200, {"ok": False, "error": "missing_scope", "needed": ",".join(needed),
                         "provided": provided}, headers
        try:
            result = await handler(Call(args=args, user=self.ws.bot.id))
        except SlackError as exc:
            return 200, {"ok": False, "error": exc.code, **exc.extra}, headers
        return 200, {"ok": True, **result}, headers

    def _conversation_kind(self, method: str, args: dict[str, Any]) -> str | None:
        """The type of conversation a call is about, for the Conversations API's per-type scopes."""
        if method == "conversations.create":
            return "private" if str(args.get("is_private", "")).lower() in ("true", "1") else "public"
        if method == "conversations.open":
            return "mpim" if "," in str(args.get("users") or "") else "im"
        channel = self.ws.channels.get(str(args.get("channel") or ""))
        if channel is None:
            return None
        return "im" if channel.is_im else "private" if channel.is_private else "public"

    # --- Slack's side toward the app (user_actions; tests forge payloads with the private ones) -----------

    async def command(self, user: str, channel: str, command: str, text: str) -> dict[str, Any]:
        return await self.user_actions.command(user, channel, command, text)

    async def click(self, user: str, channel: str, ts: str, *, action_id: str | None = None, text: str | None = None,
                    value: str | None = None, block_id: str | None = None) -> dict[str, Any]:
        return await self.user_actions.click(user, channel, ts, action_id=action_id, text=text, value=value,
                                             block_id=block_id)

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        return await self.user_actions.submit(user, view_id, values)

    def close_view(self, user: str, view_id: str) -> dict[str, Any]:
        return self.user_actions.close_view(user, view_id)

    async def say(self, user: str, channel_id: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        return await self.user_actions.say(user, channel_id, text, thread_ts)

    async def event(self, event: dict[str, Any]) -> dict[str, Any]:
        return await self.user_actions.event(event)

    def _trigger(self, user: str) -> str:
        return self.user_actions.trigger(user)

    def _response_url(self, user: str, channel: str, message_ts: str | None) -> str:
        return self.responses.issue(user, channel, message_ts)

    def _find_message(self, user: str, channel_id: str, ts: str) -> tuple[Message, bool]:
        return self.user_actions.find_message(user, channel_id, ts)

    async def _deliver(self, body: bytes, content_type: str, kind: str, extra_headers: dict[str, str] | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
        return await self.delivery.deliver(body, content_type, kind, extra_headers, timeout)

    # --- state -----------------------------------------------------------------------------------------

    def set_group_members(self, group: str, users: list[str]) -> None:
        self.ws.groups[group]["users"] = list(users)

    def state(self) -> dict[str, Any]:
        return self.ws.state() | {"calls": list(self.calls), "deliveries": list(self.deliveries)}

    def ui_view(self) -> dict[str, Any]:
        """What the web client renders: the workspace without the call and delivery logs (they grow without bound)."""
        return self.ws.state() | {"version": self.feed.version, "app_connected": self.delivery.reachable}

    def file_content(self, file_id: str) -> bytes:
        return bytes(self.ws.files[file_id]["content"])


async def _arguments(request: web.Request) -> dict[str, Any]:
    args: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return args
    content_type = request.content_type
    if content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return args | {"__invalid_json__": True}
        if isinstance(body, dict):
            args.update(body)
    elif content_type == "multipart/form-data":
        form = await request.post()
        args.update({k: v for k, v in form.items() if isinstance(v, str)})
    else:
        raw = await request.text()
        args.update(dict(parse_qsl(raw, keep_blank_values=True)))
    return args


def _token(request: web.Request, args: dict[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    token = args.get("token")
    return str(token) if token else None


def _loggable(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "token"}
