"""The sandbox server: Slack's Web API at /api/<method>, and Slack's side of the conversation toward the app
(signed slash commands, clicks, view submissions, events) driven through a control API at /_sandbox/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode

import aiohttp
from aiohttp import web

from bot.core.webserver import listen_url, start_site
from bot.sandbox import payloads, webclient
from bot.sandbox import scopes as method_scopes
from bot.sandbox.faults import LOST_500, LOST_TIMEOUT, Faults
from bot.sandbox.limits import RateLimits
from bot.sandbox.signing import signed_headers
from bot.sandbox.socket_mode import SocketHub
from bot.sandbox.webapi import Call, SlackError, WebApi
from bot.sandbox.workspace import Message, load_workspace

TRIGGER_SECONDS = 3.0
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60
EVENT_ACK_SECONDS = 3.0
# Web API methods that only read: every other successful call tells the web client to look again.
READ_METHODS = frozenset({"auth.test", "chat.getPermalink", "conversations.history", "conversations.info",
                          "conversations.list", "conversations.members", "conversations.replies", "users.info",
                          "users.list", "users.lookupByEmail", "usergroups.users.list", "apps.connections.open"})


@dataclass
class ResponseUrl:
    user: str
    channel: str
    message_ts: str | None
    expires: float
    uses: int = 0


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
        self.methods = self.api.dispatch()
        self.calls: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.response_urls: dict[str, ResponseUrl] = {}
        self.sockets = SocketHub()
        self.feed = webclient.ChangeFeed()
        self._stopping = asyncio.Event()  # hung calls end with the sandbox, so stopping never waits them out
        self._deliveries = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
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
        app.router.add_post("/_sandbox/command", self._control(lambda b: self.command(
            b["user"], b["channel"], b.get("command", "/rollback"), b.get("text", ""))))
        app.router.add_post("/_sandbox/click", self._control(lambda b: self.click(
            b["user"], b["channel"], b["ts"], action_id=b.get("action_id"), text=b.get("text"), value=b.get("value"),
            block_id=b.get("block_id"))))
        app.router.add_post("/_sandbox/say", self._control(lambda b: self.say(
            b["user"], b["channel"], b["text"], thread_ts=b.get("thread_ts"))))
        app.router.add_post("/_sandbox/close", self._control(lambda b: self.close_view(b["user"], b["view_id"])))
        app.router.add_post("/_sandbox/submit", self._control(lambda b: self.submit(b["user"], b["view_id"],
                                                                                   b.get("values", {}))))
        app.router.add_post("/_sandbox/event", self._control(lambda b: self.event(b)))
        app.router.add_post("/_sandbox/faults", self._control(self._set_faults))
        app.router.add_post("/_sandbox/limits", self._control(self._set_limits))
        app.router.add_post("/_sandbox/usergroups/{group}", self._set_group)
        app.router.add_get("/_sandbox/state", self._state)
        app.router.add_get("/_sandbox/socket", self.sockets.handle)
        app.router.add_post("/_sandbox/respond/{token}", self._respond)
        app.router.add_post("/_sandbox/upload/{file_id}", self._upload)
        app.router.add_get("/_sandbox/files/{file_id}", self._file)
        webclient.add_routes(app, self.feed, self.ui_view)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._runner, self.port = await start_site(self.web_app(), host, port)
        self.host = host
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        self.feed.close()  # open pages' event streams end, so the runner's cleanup does not wait on them
        self._stopping.set()
        if self._session:
            await self._session.close()
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

    # --- Slack's side toward the app -------------------------------------------------------------------

    def _trigger(self, user: str) -> str:
        trigger_id = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"
        self.api.triggers[trigger_id] = (user, self.clock() + TRIGGER_SECONDS)
        return trigger_id

    def _response_url(self, user: str, channel: str, message_ts: str | None) -> str:
        token = secrets.token_urlsafe(16)
        self.response_urls[token] = ResponseUrl(user, channel, message_ts, self.clock() + RESPONSE_URL_SECONDS)
        return f"{self.base_url}/_sandbox/respond/{token}"

    async def _deliver(self, body: bytes, content_type: str, kind: str, extra_headers: dict[str, str] | None = None,
                       timeout: float = 10.0) -> dict[str, Any]:
        # When and what a person did, on the same clock as the calls: benches count clicks between bot messages.
        seen = {"at": self.clock(), **_what(body, content_type)}
        if self.sockets.connected:
            result = await self.sockets.deliver(kind, _socket_payload(body, content_type), timeout)
            self.deliveries.append({**result, **seen})
            return result
        if not self.app_url:
            raise RuntimeError("the sandbox has no app URL to deliver to (--app-url)")
        assert self._session is not None
        # Several comma-separated URLs: deliveries alternate between them, like a load balancer over replicas.
        urls = self.app_url.split(",")
        url = urls[self._deliveries % len(urls)]
        self._deliveries += 1
        headers = signed_headers(self.signing_secret, int(time.time()), body, content_type) | (extra_headers or {})
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=body, headers=headers,
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

    async def command(self, user: str, channel: str, command: str, text: str) -> dict[str, Any]:
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        response_url = self._response_url(user, channel, None)
        form = payloads.command_form(self.ws, user, channel, command, text, response_url, self._trigger(user))
        result = await self._deliver(urlencode(form).encode(), "application/x-www-form-urlencoded", "command")
        if result["status"] == 200 and result["body"]:
            body = result["body"] if isinstance(result["body"], dict) else {"text": str(result["body"])}
            self._show_response(self.response_urls[response_url.rsplit("/", 1)[1]], body, count_use=False)
        self.feed.bump()
        return result

    def _find_message(self, user: str, channel_id: str, ts: str) -> tuple[Message, bool]:
        channel = self.ws.channels.get(channel_id)
        if channel is not None:
            message = channel.find(ts)
            if message is not None:
                return message, False
        for ephemeral in self.ws.ephemerals.get(user, []):
            if ephemeral["ts"] == ts and ephemeral["channel"] == channel_id:
                return Message(ts=ts, user=self.ws.bot.id, text=ephemeral["text"], blocks=ephemeral["blocks"]), True
        raise payloads.ClickError(f"no message {ts} in {channel_id} for {user}")

    async def click(self, user: str, channel: str, ts: str, *, action_id: str | None = None, text: str | None = None,
                    value: str | None = None, block_id: str | None = None) -> dict[str, Any]:
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        message, ephemeral = self._find_message(user, channel, ts)
        block, element, option = payloads.find_action(message.blocks or [], action_id, text, value, block_id)
        action, values = payloads.click(message, user, block, element, option, f"{self.clock():.6f}")
        payload = payloads.block_actions(self.ws, user, channel, message, action, values,
                                         self._response_url(user, channel, ts), self._trigger(user), ephemeral)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        result = await self._deliver(body, "application/x-www-form-urlencoded", "block_actions")
        self.feed.bump()
        return result

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        views = self.ws.views.get(user, [])
        index = next((i for i, v in enumerate(views) if v["id"] == view_id), None)
        if index is None:
            raise ValueError(f"no open view {view_id} for {user}")
        payload = payloads.view_submission(self.ws, user, views[index], values, self._trigger(user))
        body = urlencode({"payload": json.dumps(payload)}).encode()
        result = await self._deliver(body, "application/x-www-form-urlencoded", "view_submission")
        answer = result["body"] if isinstance(result["body"], dict) else {}
        action = answer.get("response_action")
        if result["status"] == 200 and action == "errors":
            views[index]["errors"] = answer.get("errors", {})
        elif result["status"] == 200 and action == "update":
            views[index] = views[index] | answer.get("view", {})
        elif result["status"] == 200 and action == "push":
            views.append(answer.get("view", {}) | {"id": self.ws.new_id("V")})
        elif result["status"] == 200 and action == "clear":
            views.clear()
        elif result["status"] == 200:
            del views[index]
        self.feed.bump()
        return result

    def close_view(self, user: str, view_id: str) -> dict[str, Any]:
        """The user pressed Close (or Escape): the view goes, as in Slack; no `view_closed` is sent (the app
        asks for none)."""
        views = self.ws.views.get(user, [])
        if not any(v["id"] == view_id for v in views):
            raise ValueError(f"no open view {view_id} for {user}")
        self.ws.views[user] = [v for v in views if v["id"] != view_id]
        self.feed.bump()
        return {"ok": True}

    async def say(self, user: str, channel_id: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        """A person posts a message: it joins the channel, and the app hears an `app_mention` when it is named
        (the one message event its manifest subscribes to)."""
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        channel = self.ws.channels.get(channel_id)
        if channel is None or user not in channel.members:
            raise ValueError(f"{user} is not in {channel_id}")
        if thread_ts and channel.find(thread_ts) is None:
            raise ValueError(f"no message {thread_ts} in {channel_id}")
        message = Message(ts=self.api.next_ts(), user=user, text=text, thread_ts=thread_ts)
        channel.messages.append(message)
        self.feed.bump()
        delivered: dict[str, Any] | None = None
        if f"<@{self.ws.bot.id}>" in text and (self.app_url or self.sockets.connected):
            event = {"type": "app_mention", "user": user, "text": text, "ts": message.ts, "channel": channel_id,
                     "event_ts": message.ts} | ({"thread_ts": thread_ts} if thread_ts else {})
            delivered = await self.event(event)
        return {"ok": True, "ts": message.ts, "delivered": delivered}

    async def event(self, event: dict[str, Any]) -> dict[str, Any]:
        event_id = f"Ev{secrets.token_hex(5).upper()}"
        envelope = payloads.event_callback(self.ws, event, event_id, int(self.clock()))
        body = json.dumps(envelope).encode()
        result = await self._deliver(body, "application/json", "event", timeout=EVENT_ACK_SECONDS)
        retries = 0
        while result["status"] in (0, 500, 502, 503) and retries < 3:  # Slack retries 3 times
            retries += 1
            reason = "http_timeout" if result["status"] == 0 else "http_error"
            result = await self._deliver(body, "application/json", "event",
                                         {"X-Slack-Retry-Num": str(retries), "X-Slack-Retry-Reason": reason},
                                         timeout=EVENT_ACK_SECONDS)
        result["retries"] = retries
        result["event_id"] = event_id
        self.feed.bump()
        return result

    # --- response_url ----------------------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        entry = self.response_urls.get(request.match_info["token"])
        if entry is None:
            return web.Response(status=404, text="no_such_response_url")
        if entry.uses >= RESPONSE_URL_USES or self.clock() > entry.expires:
            return web.Response(status=410 if entry.uses < RESPONSE_URL_USES else 429, text="used_up_or_expired")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        problems = self._show_response(entry, body, count_use=True)
        self.feed.bump()
        if problems:
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")

    def _show_response(self, entry: ResponseUrl, body: dict[str, Any], count_use: bool) -> list[str]:
        from bot.sandbox.blockkit import check_message

        problems = check_message(body.get("blocks"))
        if problems:
            return problems
        if count_use:
            entry.uses += 1
        channel = self.ws.channels.get(entry.channel)
        if body.get("delete_original") and channel and entry.message_ts:
            channel.messages = [m for m in channel.messages if m.ts != entry.message_ts]
        elif body.get("replace_original") and channel and entry.message_ts:
            message = channel.find(entry.message_ts)
            if message:
                message.text, message.blocks, message.edited = body.get("text", ""), body.get("blocks"), True
                message.client_state.clear()
        elif body.get("response_type") == "in_channel" and channel:
            channel.messages.append(Message(ts=self.api.next_ts(), user=self.ws.bot.id, text=body.get("text", ""),
                                            blocks=body.get("blocks"), bot_id=self.ws.bot_id,
                                            thread_ts=body.get("thread_ts")))
        elif body.get("text") or body.get("blocks"):
            self.ws.ephemerals.setdefault(entry.user, []).append(
                {"channel": entry.channel, "ts": self.api.next_ts(), "text": body.get("text", ""),
                 "blocks": body.get("blocks"), "thread_ts": None})
        return []

    # --- control API -----------------------------------------------------------------------------------

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
        self.faults.apply(body)
        return {"ok": True}

    def _set_limits(self, body: dict[str, Any]) -> dict[str, Any]:
        if "enabled" in body:
            self.limits.enabled = bool(body["enabled"])
        if "scale" in body:
            self.limits.scale = float(body["scale"])
        return {"ok": True}

    def set_group_members(self, group: str, users: list[str]) -> None:
        self.ws.groups[group]["users"] = list(users)

    async def _set_group(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.set_group_members(request.match_info["group"], body["users"])
        except KeyError as exc:
            return web.json_response({"error": f"unknown {exc}"}, status=400)
        self.feed.bump()
        return web.json_response({"ok": True})

    def state(self) -> dict[str, Any]:
        return self.ws.state() | {"calls": list(self.calls), "deliveries": list(self.deliveries)}

    def ui_view(self) -> dict[str, Any]:
        """What the web client renders: the workspace without the call and delivery logs (they grow without bound)."""
        return self.ws.state() | {"version": self.feed.version, "app_connected": bool(self.app_url or self.sockets.connected)}

    async def _state(self, _: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _upload(self, request: web.Request) -> web.Response:
        record = self.ws.files.get(request.match_info["file_id"])
        if record is None:
            return web.Response(status=404, text="file_not_found")
        record["content"] = await request.read()
        record["uploaded"] = True
        self.feed.bump()
        return web.Response(text=f"OK - {len(record['content'])}")

    async def _file(self, request: web.Request) -> web.Response:
        record = self.ws.files.get(request.match_info["file_id"])
        if record is None or not record["uploaded"]:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=record["content"], content_type="application/octet-stream")

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


def _socket_payload(body: bytes, content_type: str) -> dict[str, Any]:
    """The same content Slack would POST, as the JSON payload of a Socket Mode envelope."""
    if content_type == "application/json":
        return dict(json.loads(body))
    form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    return dict(json.loads(form["payload"])) if "payload" in form else form


def _token(request: web.Request, args: dict[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    token = args.get("token")
    return str(token) if token else None


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


def _loggable(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k != "token"}
