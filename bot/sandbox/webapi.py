"""The Web API's core: what a method handler sees (`Call`), how it fails (`SlackError`), and the state and lookups
every method family shares (`WebApi`). The methods themselves live by family in the webapi_* modules;
webapi_methods binds them into the dispatch table."""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.blockkit import check_message
from bot.sandbox.workspace import Channel, Workspace


class SlackError(Exception):
    """Answered as HTTP 200 {"ok": false, "error": code} like Slack (plus extras such as `errors`)."""

    def __init__(self, code: str, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


@dataclass
class Call:
    """What a handler sees: arguments, the caller's user id, and the sandbox's services."""

    args: dict[str, Any]
    user: str  # the user the token belongs to (the bot)

    def str(self, key: str, required: bool = True) -> str:
        value = self.args.get(key)
        if value in (None, "") and required:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] missing required field: {key}"]})
        return "" if value is None else str(value)

    def json(self, key: builtins.str) -> Any:  # `str` is this class's method here
        value = self.args.get(key)
        if isinstance(value, str) and value:
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {key} is not JSON"]}) \
                    from None
        return value


Handler = Callable[[Call], Awaitable[dict[str, Any]]]


@dataclass
class WebApi:
    ws: Workspace
    now: Callable[[], float]
    base_url: Callable[[], str]
    scopes: frozenset[str] = frozenset()  # the installed app's bot scopes
    on_view_opened: Callable[[str, dict[str, Any]], None] | None = None
    triggers: dict[str, tuple[str, float]] = field(default_factory=dict)  # trigger_id -> (user, expires)
    _last_ts: float = 0.0

    def next_ts(self) -> str:
        ts = max(self.now(), self._last_ts + 0.000001)
        self._last_ts = ts
        return f"{ts:.6f}"

    def channel(self, ref: str, *, for_post: bool = False) -> Channel:
        ref = ref.lstrip("#")
        if ref in self.ws.channels:
            return self.ws.channels[ref]
        if for_post and self.ws.human(ref):
            return self.ws.im_for(ref, int(self.now()))
        by_name = self.ws.channel_by_name(ref)
        if by_name:
            return by_name
        raise SlackError("channel_not_found")

    def member_channel(self, ref: str) -> Channel:
        channel = self.channel(ref)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.ws.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def readable_channel(self, ref: str) -> Channel:
        """History is read only where the bot is a member (channels:history: "channels your app has been added
        to"), archived or not."""
        channel = self.channel(ref)
        if self.ws.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    def blocks(self, call: Call, check: Callable[[Any], list[str]] = check_message) -> list[dict[str, Any]] | None:
        blocks = call.json("blocks")
        if blocks is None:
            return None
        problems = check(blocks)
        if problems:
            raise SlackError("invalid_blocks", errors=problems[:20],
                             response_metadata={"messages": [f"[ERROR] {p}" for p in problems[:20]]})
        return blocks

    def message_text(self, call: Call, blocks: list[dict[str, Any]] | None) -> str:
        text = call.str("text", required=False)
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > 40000:
            raise SlackError("msg_too_long")
        return text


# A method of one family: the shared WebApi, then the call (webapi_methods binds the first).
Method = Callable[[WebApi, Call], Awaitable[dict[str, Any]]]


def page(call: Call, items: list[Any], key: str) -> dict[str, Any]:
    """Cursor paging as Slack does it: `limit` items from `cursor`, and the next cursor ("" on the last page)."""
    limit = int(call.args.get("limit") or 100)
    start = int(call.args.get("cursor") or 0)
    chunk = items[start:start + limit]
    cursor = str(start + limit) if start + limit < len(items) else ""
    return {key: chunk, "response_metadata": {"next_cursor": cursor}}


def flag(call: Call, key: str) -> bool:
    return str(call.args.get(key, "")).lower() in ("true", "1")
