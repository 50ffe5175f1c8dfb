"""The Web API's surfaces: views.* (modals opened with a person's trigger id, App Home) and the block and action
ids Slack fills in on a view it stores."""

from __future__ import annotations

import secrets
from typing import Any

from bot.sandbox.blockkit import check_view
from bot.sandbox.webapi import Call, Method, SlackError, WebApi


def take_trigger(api: WebApi, trigger_id: str) -> str:
    entry = api.triggers.get(trigger_id)
    if entry is None:
        raise SlackError("invalid_trigger_id")
    user, expires = entry
    if api.now() > expires:
        raise SlackError("expired_trigger_id")
    del api.triggers[trigger_id]  # single use
    return user


def checked_view(call: Call) -> dict[str, Any]:
    view = call.json("view")
    problems = check_view(view)
    if problems:
        raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
    return dict(view)


async def open_view(api: WebApi, call: Call) -> dict[str, Any]:
    view = with_block_ids(checked_view(call))
    user = take_trigger(api, call.str("trigger_id"))
    stored = view | {"id": api.ws.new_id("V"), "team_id": api.ws.team_id, "hash": api.next_ts(),
                     "state": {"values": {}}, "app_id": "A0ROLLBOT", "bot_id": api.ws.bot_id}
    api.ws.views.setdefault(user, []).append(stored)
    return {"view": stored}


async def update_view(api: WebApi, call: Call) -> dict[str, Any]:
    view = with_block_ids(checked_view(call))
    view_id = call.str("view_id", required=False) or None
    external = call.str("external_id", required=False) or None
    for views in api.ws.views.values():
        for i, existing in enumerate(views):
            if existing["id"] == view_id or (external and existing.get("external_id") == external):
                views[i] = existing | view | {"hash": api.next_ts()}
                return {"view": views[i]}
    raise SlackError("not_found")


async def publish(api: WebApi, call: Call) -> dict[str, Any]:
    view = checked_view(call)
    user = call.str("user_id")
    if user not in api.ws.users:
        raise SlackError("user_not_found")
    stored = view | {"id": api.ws.new_id("V"), "type": "home"}
    homes = [v for v in api.ws.views.get(user, []) if v.get("type") != "home"]
    api.ws.views[user] = homes + [stored]
    return {"view": stored}


def with_block_ids(view: dict[str, Any]) -> dict[str, Any]:
    """Slack gives every block without a block_id (and every interactive element without an action_id) a
    generated one, and returns the view with them: `state.values` is keyed by them."""
    if not isinstance(view.get("blocks"), list):
        return view
    blocks = []
    for i, block in enumerate(view["blocks"]):
        block = dict(block)
        block.setdefault("block_id", f"b{i:02d}{secrets.token_hex(2)}")
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict) and block[key].get("type") not in ("image", "plain_text", "mrkdwn"):
                block[key] = {"action_id": secrets.token_hex(3)} | block[key]
        if block.get("type") == "actions" and isinstance(block.get("elements"), list):
            block["elements"] = [{"action_id": secrets.token_hex(3)} | e if isinstance(e, dict) else e
                                 for e in block["elements"]]
        blocks.append(block)
    return view | {"blocks": blocks}


METHODS: dict[str, Method] = {
    "views.open": open_view,
    "views.update": update_view,
    "views.publish": publish,
}
