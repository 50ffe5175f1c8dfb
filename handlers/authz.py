"""The Bolt middleware every interaction goes through first: an action, view submission or shortcut without a row
in the authorization table (bot/core/authz.py RULES) is acknowledged and refused, so a listener added without a
rule cannot run. The rule itself is checked, with the click's incident and subject, by the engine call the
handler makes (`authz.require`)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse

from bot.core.authz import RULES, interaction_key

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from handlers.app import App

log = logging.getLogger(__name__)


def interaction_of(body: dict[str, Any]) -> str | None:
    """The table key of an interactive payload; None for what is not an interaction (events, commands: the
    /rollback handler checks its subcommand against the table itself)."""
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or [{}]
        return interaction_key("action", str(actions[0].get("action_id", "")))
    if kind in ("view_submission", "view_closed"):
        return interaction_key("view", str((body.get("view") or {}).get("callback_id", "")))
    if kind in ("shortcut", "message_action"):
        return interaction_key("shortcut", str(body.get("callback_id", "")))
    return None


def register(bot: App) -> None:
    @bot.bolt.middleware
    async def declared_interactions_only(body: dict[str, Any],
                                         next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        key = interaction_of(body)
        if key is not None and key not in RULES:
            log.warning("refused an interaction with no authorization rule: %s", key)
            return BoltResponse(status=200, body="")  # acknowledged, nothing done
        if key is not None and not isinstance((body.get("user") or {}).get("id"), str):
            log.warning("refused an interaction without a user: %s", key)  # rules are evaluated by user ID
            return BoltResponse(status=200, body="")
        await next()
        return None
