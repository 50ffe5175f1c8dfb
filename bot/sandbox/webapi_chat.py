"""The Web API's message methods: chat.* (post, update, ephemeral, permalink), and what is done to a posted
message (reactions.add, pins.add)."""

from __future__ import annotations

from typing import Any

from bot.sandbox.webapi import Call, Method, SlackError, WebApi
from bot.sandbox.workspace import Message


async def post_message(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"), for_post=True)
    if channel.is_archived:
        raise SlackError("is_archived")
    if api.ws.bot.id not in channel.members and (channel.is_private or "chat:write.public" not in api.scopes):
        raise SlackError("not_in_channel")  # a public channel takes posts from outside only with chat:write.public
    blocks = api.blocks(call)
    text = api.message_text(call, blocks)
    thread_ts = call.str("thread_ts", required=False) or None
    if thread_ts and channel.find(thread_ts) is None:
        raise SlackError("thread_not_found")
    message = Message(ts=api.next_ts(), user=api.ws.bot.id, text=text, blocks=blocks, thread_ts=thread_ts,
                      bot_id=api.ws.bot_id, metadata=metadata(call))
    channel.messages.append(message)
    return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}


def metadata(call: Call) -> dict[str, Any] | None:
    """chat.postMessage's `metadata`: a JSON object (or its text) with `event_type` and `event_payload`."""
    if "metadata" not in call.args or call.args["metadata"] in (None, ""):
        return None
    meta = call.json("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) \
            or not isinstance(meta.get("event_payload"), dict):
        raise SlackError("invalid_metadata_format")
    return {"event_type": meta["event_type"], "event_payload": meta["event_payload"]}


async def update(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    message = channel.find(call.str("ts"))
    if message is None:
        raise SlackError("message_not_found")
    if message.user != api.ws.bot.id:
        raise SlackError("cant_update_message")
    blocks = api.blocks(call)
    text = api.message_text(call, blocks or message.blocks)
    message.text, message.edited = text or message.text, True
    if "blocks" in call.args:
        message.blocks = blocks
    message.client_state.clear()  # every client re-renders the message: checkboxes show its initial_options
    return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.to_api()}


async def post_ephemeral(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    user = call.str("user")
    if user not in api.ws.users:
        raise SlackError("user_not_found")
    if user not in channel.members:
        raise SlackError("user_not_in_channel")
    blocks = api.blocks(call)
    text = api.message_text(call, blocks)
    ts = api.next_ts()
    api.ws.ephemerals.setdefault(user, []).append(
        {"channel": channel.id, "ts": ts, "text": text, "blocks": blocks, "thread_ts": call.args.get("thread_ts")})
    return {"message_ts": ts}


async def get_permalink(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    ts = call.str("message_ts")
    if channel.find(ts) is None:
        raise SlackError("message_not_found")
    return {"channel": channel.id,
            "permalink": f"{api.base_url()}/archives/{channel.id}/p{ts.replace('.', '')}"}


async def add_reaction(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    message = channel.find(call.str("timestamp"))
    if message is None:
        raise SlackError("message_not_found")
    users = message.reactions.setdefault(call.str("name"), [])
    if api.ws.bot.id in users:
        raise SlackError("already_reacted")
    users.append(api.ws.bot.id)
    return {}


async def add_pin(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel"))
    ts = call.str("timestamp")
    if channel.find(ts) is None:
        raise SlackError("message_not_found")
    if ts in channel.pins:
        raise SlackError("already_pinned")
    channel.pins.append(ts)
    return {}


METHODS: dict[str, Method] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
    "pins.add": add_pin,
    "reactions.add": add_reaction,
}
