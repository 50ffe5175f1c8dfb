"""The Web API methods the bot uses, answering with Slack's response shapes and error codes."""

from __future__ import annotations

import builtins
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.blockkit import check_message, check_view
from bot.sandbox.workspace import Channel, Message, Workspace

CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")


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

    # --- helpers ------------------------------------------------------------------------------------

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

    def dispatch(self) -> dict[str, Handler]:
        return {name.replace("_", "."): getattr(self, f"m_{name}") for name in (
            "auth_test", "chat_postMessage", "chat_update", "chat_postEphemeral", "chat_getPermalink",
            "conversations_create", "conversations_invite", "conversations_join", "conversations_info",
            "conversations_list", "conversations_members", "conversations_history", "conversations_replies",
            "conversations_setTopic", "conversations_setPurpose", "conversations_open", "conversations_archive",
            "pins_add", "bookmarks_add", "bookmarks_edit", "reactions_add", "users_info", "users_list", "users_lookupByEmail",
            "usergroups_list", "usergroups_users_list", "views_open", "views_update", "views_publish",
            "files_getUploadURLExternal",
            "files_completeUploadExternal")}

    # --- auth ---------------------------------------------------------------------------------------

    async def m_auth_test(self, call: Call) -> dict[str, Any]:
        return {"url": f"{self.base_url()}/", "team": self.ws.team_name, "user": self.ws.bot.name,
                "team_id": self.ws.team_id, "user_id": self.ws.bot.id, "bot_id": self.ws.bot_id,
                "is_enterprise_install": False}

    # --- chat ---------------------------------------------------------------------------------------

    async def m_chat_postMessage(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"), for_post=True)
        if channel.is_archived:
            raise SlackError("is_archived")
        if self.ws.bot.id not in channel.members and (channel.is_private or "chat:write.public" not in self.scopes):
            raise SlackError("not_in_channel")  # a public channel takes posts from outside only with chat:write.public
        blocks = self.blocks(call)
        text = self.message_text(call, blocks)
        thread_ts = call.str("thread_ts", required=False) or None
        if thread_ts and channel.find(thread_ts) is None:
            raise SlackError("thread_not_found")
        message = Message(ts=self.next_ts(), user=self.ws.bot.id, text=text, blocks=blocks, thread_ts=thread_ts,
                          bot_id=self.ws.bot_id, metadata=self.metadata(call))
        channel.messages.append(message)
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def metadata(self, call: Call) -> dict[str, Any] | None:
        """chat.postMessage's `metadata`: a JSON object (or its text) with `event_type` and `event_payload`."""
        if "metadata" not in call.args or call.args["metadata"] in (None, ""):
            return None
        meta = call.json("metadata")
        if not isinstance(meta, dict) or not isinstance(meta.get("event_type"), str) \
                or not isinstance(meta.get("event_payload"), dict):
            raise SlackError("invalid_metadata_format")
        return {"event_type": meta["event_type"], "event_payload": meta["event_payload"]}

    async def m_chat_update(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        message = channel.find(call.str("ts"))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != self.ws.bot.id:
            raise SlackError("cant_update_message")
        blocks = self.blocks(call)
        text = self.message_text(call, blocks or message.blocks)
        message.text, message.edited = text or message.text, True
        if "blocks" in call.args:
            message.blocks = blocks
        message.client_state.clear()  # every client re-renders the message: checkboxes show its initial_options
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.to_api()}

    async def m_chat_postEphemeral(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        user = call.str("user")
        if user not in self.ws.users:
            raise SlackError("user_not_found")
        if user not in channel.members:
            raise SlackError("user_not_in_channel")
        blocks = self.blocks(call)
        text = self.message_text(call, blocks)
        ts = self.next_ts()
        self.ws.ephemerals.setdefault(user, []).append(
            {"channel": channel.id, "ts": ts, "text": text, "blocks": blocks, "thread_ts": call.args.get("thread_ts")})
        return {"message_ts": ts}

    async def m_chat_getPermalink(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        ts = call.str("message_ts")
        if channel.find(ts) is None:
            raise SlackError("message_not_found")
        return {"channel": channel.id,
                "permalink": f"{self.base_url()}/archives/{channel.id}/p{ts.replace('.', '')}"}

    # --- conversations ------------------------------------------------------------------------------

    async def m_conversations_create(self, call: Call) -> dict[str, Any]:
        name = call.args.get("name")
        if not name:
            raise SlackError("invalid_name_required")
        name = str(name)
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not CHANNEL_NAME.match(name):
            raise SlackError("invalid_name_specials")
        if self.ws.channel_by_name(name):
            raise SlackError("name_taken")
        is_private = str(call.args.get("is_private", "")).lower() in ("true", "1")
        channel = Channel(id=self.ws.new_id("G" if is_private else "C"), name=name, creator=self.ws.bot.id,
                          created=int(self.now()), is_private=is_private, members=[self.ws.bot.id])
        self.ws.channels[channel.id] = channel
        return {"channel": channel.to_api(self.ws.bot.id)}

    async def m_conversations_invite(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel"))
        users = [u.strip() for u in call.str("users").split(",") if u.strip()]
        force = str(call.args.get("force", "")).lower() in ("true", "1")
        errors, valid = [], []
        for user in users:
            if user == self.ws.bot.id:
                errors.append({"user": user, "ok": False, "error": "cant_invite_self"})
            elif user not in self.ws.users or self.ws.users[user].deleted:
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
        out: dict[str, Any] = {"channel": channel.to_api(self.ws.bot.id)}
        if errors:
            out["errors"] = errors
        return out

    async def m_conversations_join(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        if channel.is_archived:
            raise SlackError("is_archived")
        if channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        out: dict[str, Any] = {"channel": channel.to_api(self.ws.bot.id)}
        if self.ws.bot.id in channel.members:
            out["warning"] = "already_in_channel"
        else:
            channel.members.append(self.ws.bot.id)
            out["channel"] = channel.to_api(self.ws.bot.id)
        return out

    async def m_conversations_info(self, call: Call) -> dict[str, Any]:
        return {"channel": self.channel(call.str("channel")).to_api(self.ws.bot.id)}

    async def m_conversations_list(self, call: Call) -> dict[str, Any]:
        """Public channels unless `types` says otherwise; private channels and DMs only those the bot is in
        (api.slack.com/methods/conversations.list)."""
        exclude = _flag(call, "exclude_archived")
        types = {t.strip() for t in (call.str("types", required=False) or "public_channel").split(",") if t.strip()}
        unknown = types - {"public_channel", "private_channel", "im", "mpim"}
        if unknown:
            raise SlackError("invalid_types")

        def kind(c: Channel) -> str:
            return "im" if c.is_im else "private_channel" if c.is_private else "public_channel"

        channels = [c.to_api(self.ws.bot.id) for c in self.ws.channels.values()
                    if kind(c) in types and not (exclude and c.is_archived)
                    and (kind(c) == "public_channel" or self.ws.bot.id in c.members)]
        return self._page(call, channels, "channels")

    async def m_conversations_members(self, call: Call) -> dict[str, Any]:
        return self._page(call, list(self.channel(call.str("channel")).members), "members")

    def readable_channel(self, ref: str) -> Channel:
        """History is read only where the bot is a member (channels:history: "channels your app has been added
        to"), archived or not."""
        channel = self.channel(ref)
        if self.ws.bot.id not in channel.members:
            raise SlackError("not_in_channel")
        return channel

    async def m_conversations_history(self, call: Call) -> dict[str, Any]:
        channel = self.readable_channel(call.str("channel"))
        meta = str(call.args.get("include_all_metadata", "")).lower() in ("true", "1")
        roots = [m.to_api(meta) for m in reversed(channel.messages) if not m.thread_ts or m.thread_ts == m.ts]
        out = self._page(call, roots, "messages")
        out["has_more"] = bool(out["response_metadata"]["next_cursor"])
        return out

    async def m_conversations_replies(self, call: Call) -> dict[str, Any]:
        channel = self.readable_channel(call.str("channel"))
        ts = call.str("ts")
        parent = channel.find(ts)
        if parent is None:
            raise SlackError("thread_not_found")
        thread = [parent] + [m for m in channel.messages if m.thread_ts == ts and m.ts != ts]
        meta = str(call.args.get("include_all_metadata", "")).lower() in ("true", "1")
        return self._page(call, [m.to_api(meta) for m in thread], "messages")

    async def m_conversations_setTopic(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel"))
        topic = call.str("topic", required=False)
        if len(topic) > 250:
            raise SlackError("too_long")
        channel.topic = topic
        return {"channel": channel.to_api(self.ws.bot.id)}

    async def m_conversations_setPurpose(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel"))
        purpose = call.str("purpose", required=False)
        if len(purpose) > 250:
            raise SlackError("too_long")
        channel.purpose = purpose
        return {"channel": channel.to_api(self.ws.bot.id)}

    async def m_conversations_open(self, call: Call) -> dict[str, Any]:
        users = [u for u in call.str("users").split(",") if u]
        if len(users) != 1:
            raise SlackError("not_enough_users" if not users else "too_many_users")
        if not self.ws.human(users[0]):
            raise SlackError("user_not_found")
        return {"channel": self.ws.im_for(users[0], int(self.now())).to_api()}

    async def m_conversations_archive(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        if channel.is_archived:
            raise SlackError("already_archived")
        channel.is_archived = True
        return {}

    # --- pins, bookmarks, reactions -------------------------------------------------------------------

    async def m_pins_add(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel"))
        ts = call.str("timestamp")
        if channel.find(ts) is None:
            raise SlackError("message_not_found")
        if ts in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(ts)
        return {}

    async def m_bookmarks_add(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel_id"))
        title, kind = call.str("title"), call.str("type")
        if kind != "link":
            raise SlackError("invalid_bookmark_type")  # Slack accepts only links so far
        link = self._bookmark_link(call.str("link"))
        now = int(self.now())
        bookmark = {"id": self.ws.new_id("Bk"), "channel_id": channel.id, "title": title, "link": link,
                    "emoji": call.str("emoji", required=False) or None, "icon_url": None, "type": "link",
                    "entity_id": None, "date_created": now, "date_updated": 0,
                    "rank": chr(ord("a") + min(len(channel.bookmarks), 25)),
                    "last_updated_by_user_id": call.user, "last_updated_by_team_id": self.ws.team_id,
                    "shortcut_id": None, "app_id": None}
        channel.bookmarks.append(bookmark)
        return {"bookmark": dict(bookmark)}

    async def m_bookmarks_edit(self, call: Call) -> dict[str, Any]:
        channel = self.member_channel(call.str("channel_id"))
        bookmark_id = call.str("bookmark_id")
        bookmark = next((b for b in channel.bookmarks if b["id"] == bookmark_id), None)
        if bookmark is None:
            raise SlackError("not_found")
        if "link" in call.args:
            bookmark["link"] = self._bookmark_link(call.str("link"))
        for key in ("title", "emoji"):
            if key in call.args:
                bookmark[key] = call.str(key, required=False)
        bookmark.update(date_updated=int(self.now()), last_updated_by_user_id=call.user)
        return {"bookmark": dict(bookmark)}

    @staticmethod
    def _bookmark_link(link: str) -> str:
        if not link.startswith(("http://", "https://")):
            raise SlackError("invalid_link")  # "link should begin with either http:// or https://"
        return link

    async def m_reactions_add(self, call: Call) -> dict[str, Any]:
        channel = self.channel(call.str("channel"))
        message = channel.find(call.str("timestamp"))
        if message is None:
            raise SlackError("message_not_found")
        users = message.reactions.setdefault(call.str("name"), [])
        if self.ws.bot.id in users:
            raise SlackError("already_reacted")
        users.append(self.ws.bot.id)
        return {}

    # --- users and groups -----------------------------------------------------------------------------

    async def m_users_info(self, call: Call) -> dict[str, Any]:
        user = self.ws.users.get(call.str("user"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.to_api() | {"team_id": self.ws.team_id}}

    async def m_users_list(self, call: Call) -> dict[str, Any]:
        return self._page(call, [u.to_api() | {"team_id": self.ws.team_id} for u in self.ws.users.values()], "members")

    async def m_users_lookupByEmail(self, call: Call) -> dict[str, Any]:
        email = call.str("email").lower()
        user = next((u for u in self.ws.users.values() if u.email.lower() == email and not u.deleted), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user.to_api() | {"team_id": self.ws.team_id}}

    async def m_usergroups_list(self, call: Call) -> dict[str, Any]:
        """Every user group, in no particular order; `users` only with include_users, `user_count` only with
        include_count (api.slack.com/methods/usergroups.list). The sandbox has no disabled groups."""
        include_users, include_count = _flag(call, "include_users"), _flag(call, "include_count")
        groups = []
        for group_id, group in self.ws.groups.items():
            entry: dict[str, Any] = {
                "id": group_id, "team_id": self.ws.team_id, "is_usergroup": True, "is_subteam": True,
                "name": group["name"], "description": group.get("description", ""), "handle": group["handle"],
                "is_external": False, "date_create": 0, "date_update": 0, "date_delete": 0, "auto_type": None,
                "created_by": self.ws.bot.id, "updated_by": self.ws.bot.id, "deleted_by": None,
                "prefs": {"channels": [], "groups": []},
            }
            if include_users:
                entry["users"] = list(group["users"])
            if include_count:
                entry["user_count"] = len(group["users"])
            groups.append(entry)
        return {"usergroups": groups}

    async def m_usergroups_users_list(self, call: Call) -> dict[str, Any]:
        group = self.ws.groups.get(call.str("usergroup"))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group["users"])}

    # --- views ----------------------------------------------------------------------------------------

    def _take_trigger(self, trigger_id: str) -> str:
        entry = self.triggers.get(trigger_id)
        if entry is None:
            raise SlackError("invalid_trigger_id")
        user, expires = entry
        if self.now() > expires:
            raise SlackError("expired_trigger_id")
        del self.triggers[trigger_id]  # single use
        return user

    def _view(self, call: Call) -> dict[str, Any]:
        view = call.json("view")
        problems = check_view(view)
        if problems:
            raise SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {p}" for p in problems]})
        return dict(view)

    async def m_views_open(self, call: Call) -> dict[str, Any]:
        view = with_block_ids(self._view(call))
        user = self._take_trigger(call.str("trigger_id"))
        stored = view | {"id": self.ws.new_id("V"), "team_id": self.ws.team_id, "hash": self.next_ts(),
                         "state": {"values": {}}, "app_id": "A0ROLLBOT", "bot_id": self.ws.bot_id}
        self.ws.views.setdefault(user, []).append(stored)
        return {"view": stored}

    async def m_views_update(self, call: Call) -> dict[str, Any]:
        view = with_block_ids(self._view(call))
        view_id = call.str("view_id", required=False) or None
        external = call.str("external_id", required=False) or None
        for views in self.ws.views.values():
            for i, existing in enumerate(views):
                if existing["id"] == view_id or (external and existing.get("external_id") == external):
                    views[i] = existing | view | {"hash": self.next_ts()}
                    return {"view": views[i]}
        raise SlackError("not_found")

    async def m_views_publish(self, call: Call) -> dict[str, Any]:
        view = self._view(call)
        user = call.str("user_id")
        if user not in self.ws.users:
            raise SlackError("user_not_found")
        stored = view | {"id": self.ws.new_id("V"), "type": "home"}
        homes = [v for v in self.ws.views.get(user, []) if v.get("type") != "home"]
        self.ws.views[user] = homes + [stored]
        return {"view": stored}

    # --- files ----------------------------------------------------------------------------------------

    async def m_files_getUploadURLExternal(self, call: Call) -> dict[str, Any]:
        filename = call.str("filename")
        length = int(call.str("length"))
        file_id = self.ws.new_id("F")
        self.ws.files[file_id] = {"id": file_id, "name": filename, "length": length, "content": b"", "channels": [],
                                  "title": filename, "uploaded": False}
        return {"upload_url": f"{self.base_url()}/_sandbox/upload/{file_id}", "file_id": file_id}

    async def m_files_completeUploadExternal(self, call: Call) -> dict[str, Any]:
        files = call.json("files") or []
        out = []
        channel_id = call.str("channel_id", required=False) or None
        channel = self.member_channel(channel_id) if channel_id else None
        for item in files:
            record = self.ws.files.get(item.get("id"))
            if record is None or not record["uploaded"]:
                raise SlackError("file_not_found")
            record["title"] = item.get("title") or record["name"]
            if channel is not None:
                record["channels"].append(channel.id)
                message = Message(ts=self.next_ts(), user=self.ws.bot.id,
                                  text=call.str("initial_comment", required=False) or record["title"],
                                  thread_ts=call.str("thread_ts", required=False) or None, bot_id=self.ws.bot_id,
                                  files=[record["id"]])
                channel.messages.append(message)
            out.append({"id": record["id"], "title": record["title"], "name": record["name"],
                        "permalink": f"{self.base_url()}/files/{self.ws.bot.id}/{record['id']}/{record['name']}"})
        return {"files": out}

    # --- paging ---------------------------------------------------------------------------------------

    @staticmethod
    def _page(call: Call, items: list[Any], key: str) -> dict[str, Any]:
        limit = int(call.args.get("limit") or 100)
        start = int(call.args.get("cursor") or 0)
        page = items[start:start + limit]
        cursor = str(start + limit) if start + limit < len(items) else ""
        return {key: page, "response_metadata": {"next_cursor": cursor}}


def _flag(call: Call, key: str) -> bool:
    return str(call.args.get(key, "")).lower() in ("true", "1")


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
