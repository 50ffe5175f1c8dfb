"""response_url: the URL a command or click hands the app to answer with later (five uses in thirty minutes, as
in Slack), and what an answer does to the workspace: replace or delete the original, post, or show ephemerally."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.blockkit import check_message
from bot.sandbox.workspace import Message, Workspace

RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


@dataclass
class ResponseUrl:
    user: str
    channel: str
    message_ts: str | None
    expires: float
    uses: int = 0


class ResponseUrls:
    def __init__(self, *, ws: Workspace, clock: Callable[[], float], next_ts: Callable[[], str],
                 base_url: Callable[[], str], changed: Callable[[], None]) -> None:
        self.ws = ws
        self.clock = clock
        self.next_ts = next_ts
        self.base_url = base_url
        self.changed = changed  # tells open web clients to look again
        self.entries: dict[str, ResponseUrl] = {}

    def issue(self, user: str, channel: str, message_ts: str | None) -> str:
        token = secrets.token_urlsafe(16)
        self.entries[token] = ResponseUrl(user, channel, message_ts, self.clock() + RESPONSE_URL_SECONDS)
        return f"{self.base_url()}/_sandbox/respond/{token}"

    def entry(self, url: str) -> ResponseUrl:
        return self.entries[url.rsplit("/", 1)[1]]

    async def respond(self, request: web.Request) -> web.Response:
        """POST /_sandbox/respond/{token}: the app answers on a response_url."""
        entry = self.entries.get(request.match_info["token"])
        if entry is None:
            return web.Response(status=404, text="no_such_response_url")
        if entry.uses >= RESPONSE_URL_USES or self.clock() > entry.expires:
            return web.Response(status=410 if entry.uses < RESPONSE_URL_USES else 429, text="used_up_or_expired")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.Response(status=400, text="invalid_payload")
        problems = self.show(entry, body, count_use=True)
        self.changed()
        if problems:
            return web.Response(status=400, text="invalid_blocks")
        return web.Response(text="ok")

    def show(self, entry: ResponseUrl, body: dict[str, Any], count_use: bool) -> list[str]:
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
            channel.messages.append(Message(ts=self.next_ts(), user=self.ws.bot.id, text=body.get("text", ""),
                                            blocks=body.get("blocks"), bot_id=self.ws.bot_id,
                                            thread_ts=body.get("thread_ts")))
        elif body.get("text") or body.get("blocks"):
            self.ws.ephemerals.setdefault(entry.user, []).append(
                {"channel": entry.channel, "ts": self.next_ts(), "text": body.get("text", ""),
                 "blocks": body.get("blocks"), "thread_ts": None})
        return []
