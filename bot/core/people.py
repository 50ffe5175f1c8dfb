"""People by name: Slack user IDs turned into real names (users.info, cached) and the roles they held, for text a
person reads (comms, the report). A name that cannot be looked up falls back to the role, never to the ID."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.slack.blocks import SOURCE_NAMES

UsersInfo = Callable[..., Awaitable[Any]]
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


class People:
    def __init__(self, users_info: UsersInfo | None, roles: dict[str, list[str]] | None = None) -> None:
        """`users_info` is a Slack client's `users_info` (None: no Slack, e.g. the CLI without a token);
        `roles` maps a user ID to the titles of the roles they hold."""
        self._users_info = users_info
        self.roles: dict[str, list[str]] = {k: list(v) for k, v in (roles or {}).items()}
        self._names: dict[str, str] = {}

    def add_role(self, user: str, title: str) -> None:
        held = self.roles.setdefault(user, [])
        if title not in held:
            held.append(title)

    async def resolve(self, users: Iterable[str]) -> None:
        for user in users:
            await self.name(user)

    async def name(self, user: str) -> str:
        if user not in self._names:
            found = None
            if self._users_info is not None:
                try:
                    info = await self._users_info(user=user)
                    found = info["user"].get("real_name") or info["user"].get("name")
                except (SlackApiError, KeyError, TypeError):
                    found = None
            self._names[user] = found or self._fallback(user)
        return self._names[user]

    def _fallback(self, user: str) -> str:
        held = self.roles.get(user)
        return f"the {held[0]}" if held else "a responder"

    def known(self, user: str | None) -> str:
        """The name already resolved (call `resolve` first); never the ID."""
        if not user:
            return "nobody"
        if user.startswith("alert:"):
            source = user.split(":", 1)[1]
            return f"an alert from {SOURCE_NAMES.get(source, source)}"
        if user.startswith("schedule:"):
            return "the drill schedule"
        if user == "auto":  # actions the bot starts itself (executions.AUTO)
            return "Rollbot (automatically)"
        return self._names.get(user) or self._fallback(user)

    def with_role(self, user: str | None) -> str:
        name = self.known(user)
        held = self.roles.get(user or "")
        return f"{name} ({', '.join(held)})" if held and not name.startswith("the ") else name

    def text(self, text: str) -> str:
        """Mentions (<@U…>) replaced by names, so the text can leave Slack."""
        return MENTION.sub(lambda m: self.known(m.group(1)), text)
