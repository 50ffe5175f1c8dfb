"""The Web API's channel methods: conversations.* (create, invite, join, read, topic and purpose, open a DM,
archive) and a channel's bookmarks (bookmarks.add, bookmarks.edit)."""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.webapi import Call, Method, SlackError, WebApi, flag, page
from bot.sandbox.workspace import Channel

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


async def create(api: WebApi, call: Call) -> dict[str, Any]:
    name = call.args.get("name")
    if not name:
        raise SlackError("invalid_name_required")
    name = str(name)
    if len(name) > 80:
        raise SlackError("invalid_name_maxlength")
    if not CHANNEL_NAME.match(name):
        raise SlackError("invalid_name_specials")
    if api.ws.channel_by_name(name):
        raise SlackError("name_taken")
    is_private = str(call.args.get("is_private", "")).lower() in ("true", "1")
    channel = Channel(id=api.ws.new_id("G" if is_private else "C"), name=name, creator=api.ws.bot.id,
                      created=int(api.now()), is_private=is_private, members=[api.ws.bot.id])
    api.ws.channels[channel.id] = channel
    return {"channel": channel.to_api(api.ws.bot.id)}


async def invite(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel"))
    users = [u.strip() for u in call.str("users").split(",") if u.strip()]
    force = str(call.args.get("force", "")).lower() in ("true", "1")
    errors, valid = [], []
    for user in users:
        if user == api.ws.bot.id:
            errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
        elif user not in api.ws.users or api.ws.users[user].deleted:
            errors.append({"user": user, "ok": False, "error": "user_not_found"})
        elif user in channel.members:
            errors.append({"user": user, "ok": False, "error": "already_in_channel"})
        else:
            valid.append(user)
    if errors and not force:
        if len(users) > 1 and all(e["error"] == "user_not_found" for e in errors):
            raise SlackError("users_not_found", errors=errors)
        raise SlackError(str(errors[0]["error"]), errors=errors)
    channel.members += valid
    out: dict[str, Any] = {"channel": channel.to_api(api.ws.bot.id)}
    if errors:
        out["errors"] = errors
    return out


async def join(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    if channel.is_archived:
        raise SlackError("is_archived")
    if channel.is_private:
        raise SlackError("method_not_supported_for_channel_type")
    out: dict[str, Any] = {"channel": channel.to_api(api.ws.bot.id)}
    if api.ws.bot.id in channel.members:
        out["warning"] = "already_in_channel"
    else:
        channel.members.append(api.ws.bot.id)
        out["channel"] = channel.to_api(api.ws.bot.id)
    return out


async def info(api: WebApi, call: Call) -> dict[str, Any]:
    return {"channel": api.channel(call.str("channel")).to_api(api.ws.bot.id)}


async def list_channels(api: WebApi, call: Call) -> dict[str, Any]:
    """Public channels unless `types` says otherwise; private channels and DMs only those the bot is in
    (api.slack.com/methods/conversations.list)."""
    exclude = flag(call, "exclude_archived")
    types = {t.strip() for t in (call.str("types", required=False) or "public_channel").split(",") if t.strip()}
    unknown = types - {"public_channel", "private_channel", "im", "mpim"}
    if unknown:
        raise SlackError("invalid_types")

    def kind(c: Channel) -> str:
        return "im" if c.is_im else "private_channel" if c.is_private else "public_channel"

    channels = [c.to_api(api.ws.bot.id) for c in api.ws.channels.values()
                if kind(c) in types and not (exclude and c.is_archived)
                and (kind(c) == "public_channel" or api.ws.bot.id in c.members)]
    return page(call, channels, "channels")


async def members(api: WebApi, call: Call) -> dict[str, Any]:
    return page(call, list(api.channel(call.str("channel")).members), "members")


async def history(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.readable_channel(call.str("channel"))
    meta = str(call.args.get("include_all_metadata", "")).lower() in ("true", "1")
    roots = [m.to_api(meta) for m in reversed(channel.messages) if not m.thread_ts or m.thread_ts == m.ts]
    out = page(call, roots, "messages")
    out["has_more"] = bool(out["response_metadata"]["next_cursor"])
    return out


async def replies(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.readable_channel(call.str("channel"))
    ts = call.str("ts")
    parent = channel.find(ts)
    if parent is None:
        raise SlackError("thread_not_found")
    thread = [parent] + [m for m in channel.messages if m.thread_ts == ts and m.ts != ts]
    meta = str(call.args.get("include_all_metadata", "")).lower() in ("true", "1")
    return page(call, [m.to_api(meta) for m in thread], "messages")


async def set_topic(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel"))
    topic = call.str("topic", required=False)
    if len(topic) > 250:
        raise SlackError("too_long")
    channel.topic = topic
    return {"channel": channel.to_api(api.ws.bot.id)}


async def set_purpose(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel"))
    purpose = call.str("purpose", required=False)
    if len(purpose) > 250:
        raise SlackError("too_long")
    channel.purpose = purpose
    return {"channel": channel.to_api(api.ws.bot.id)}


async def open_dm(api: WebApi, call: Call) -> dict[str, Any]:
    users = [u for u in call.str("users").split(",") if u]
    if len(users) != 1:
        raise SlackError("not_enough_users" if not users else "too_many_users")
    if not api.ws.human(users[0]):
        raise SlackError("user_not_found")
    return {"channel": api.ws.im_for(users[0], int(api.now())).to_api()}


async def archive(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.channel(call.str("channel"))
    if channel.is_archived:
        raise SlackError("already_archived")
    channel.is_archived = True
    return {}


async def add_bookmark(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel_id"))
    title, kind = call.str("title"), call.str("type")
    if kind != "link":
        raise SlackError("invalid_bookmark_type")  # Slack accepts only links so far
    link = bookmark_link(call.str("link"))
    now = int(api.now())
    bookmark = {"id": api.ws.new_id("Bk"), "channel_id": channel.id, "title": title, "link": link,
                "emoji": call.str("emoji", required=False) or None, "icon_url": None, "type": "link",
                "entity_id": None, "date_created": now, "date_updated": 0,
                "rank": chr(ord("a") + min(len(channel.bookmarks), 25)),
                "last_updated_by_user_id": call.user, "last_updated_by_team_id": api.ws.team_id,
                "shortcut_id": None, "app_id": None}
    channel.bookmarks.append(bookmark)
    return {"bookmark": dict(bookmark)}


async def edit_bookmark(api: WebApi, call: Call) -> dict[str, Any]:
    channel = api.member_channel(call.str("channel_id"))
    bookmark_id = call.str("bookmark_id")
    bookmark = next((b for b in channel.bookmarks if b["id"] == bookmark_id), None)
    if bookmark is None:
        raise SlackError("not_found")
    if "link" in call.args:
        bookmark["link"] = bookmark_link(call.str("link"))
    for key in ("title", "emoji"):
        if key in call.args:
            bookmark[key] = call.str(key, required=False)
    bookmark.update(date_updated=int(api.now()), last_updated_by_user_id=call.user)
    return {"bookmark": dict(bookmark)}


def bookmark_link(link: str) -> str:
    if not link.startswith(("http://", "https://")):
        raise SlackError("invalid_link")  # "link should begin with either http:// or https://"
    return link


METHODS: dict[str, Method] = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.info": info,
    "conversations.list": list_channels,
    "conversations.members": members,
    "conversations.history": history,
    "conversations.replies": replies,
    "conversations.setTopic": set_topic,
    "conversations.setPurpose": set_purpose,
    "conversations.open": open_dm,
    "conversations.archive": archive,
    "bookmarks.add": add_bookmark,
    "bookmarks.edit": edit_bookmark,
}
