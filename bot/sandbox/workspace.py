"""The sandbox workspace's state: users, groups, channels with messages and threads, DMs, views, files."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_WORKSPACE = Path(__file__).resolve().parents[2] / "runbooks" / "sandbox-workspace.yml"


class WorkspaceError(ValueError):
    pass


@dataclass
class User:
    id: str
    name: str
    real_name: str
    email: str
    tz: str = "America/New_York"
    is_bot: bool = False
    deleted: bool = False

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "team_id": "", "name": self.name, "real_name": self.real_name, "deleted": self.deleted,
                "tz": self.tz, "is_bot": self.is_bot, "is_app_user": False,
                "profile": {"real_name": self.real_name, "display_name": self.name, "email": self.email}}


@dataclass
class Message:
    ts: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    bot_id: str | None = None
    edited: bool = False
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None  # message metadata: {"event_type", "event_payload"}
    # What each user's Slack client shows before the app re-renders: {user: {(block_id, action_id): state}}.
    client_state: dict[str, dict[tuple[str, str], dict[str, Any]]] = field(default_factory=dict)

    def to_api(self, with_metadata: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if with_metadata and self.metadata is not None:  # Slack returns it only when asked (include_all_metadata)
            out["metadata"] = self.metadata
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if self.reactions:
            out["reactions"] = [{"name": n, "users": u, "count": len(u)} for n, u in self.reactions.items()]
        if self.files:
            out["files"] = [{"id": f} for f in self.files]
        return out


@dataclass
class Channel:
    id: str
    name: str
    creator: str
    created: int
    is_private: bool = False
    is_im: bool = False
    im_user: str | None = None
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    topic: str = ""
    purpose: str = ""
    pins: list[str] = field(default_factory=list)
    bookmarks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)

    def find(self, ts: str) -> Message | None:
        return next((m for m in self.messages if m.ts == ts), None)

    def to_api(self, viewer: str | None = None) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.im_user, "created": self.created, "is_open": True}
        return {
            "id": self.id, "name": self.name, "name_normalized": self.name, "is_channel": not self.is_private,
            "is_group": self.is_private, "is_im": False, "is_private": self.is_private, "is_archived": self.is_archived,
            "is_general": self.name == "general", "created": self.created, "creator": self.creator,
            "is_member": viewer in self.members if viewer else False, "num_members": len(self.members),
            "topic": {"value": self.topic, "creator": self.creator, "last_set": 0},
            "purpose": {"value": self.purpose, "creator": self.creator, "last_set": 0},
        }

    def to_state(self) -> dict[str, Any]:
        roots = [m for m in self.messages if not m.thread_ts or m.thread_ts == m.ts]
        def with_replies(m: Message) -> dict[str, Any]:
            out = m.to_api()
            out["replies"] = [r.to_api() for r in self.messages if r.thread_ts == m.ts and r.ts != m.ts]
            return out
        base = {"id": self.id, "name": self.name, "topic": self.topic, "purpose": self.purpose,
                "members": list(self.members), "pins": list(self.pins), "bookmarks": list(self.bookmarks),
                "is_archived": self.is_archived, "is_private": self.is_private,
                "messages": [with_replies(m) for m in roots]}
        if self.is_im:
            base["user"] = self.im_user
        return base


@dataclass
class Workspace:
    team_id: str
    team_name: str
    bot: User
    bot_id: str
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {handle, name, users}
    channels: dict[str, Channel] = field(default_factory=dict)
    ephemerals: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    views: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):04d}{secrets.token_hex(3).upper()}"

    def human(self, user: str) -> User | None:
        u = self.users.get(user)
        return u if u and not u.is_bot else None

    def channel_by_name(self, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def im_for(self, user: str, now: int) -> Channel:
        for channel in self.channels.values():
            if channel.is_im and channel.im_user == user:
                return channel
        channel = Channel(id=self.new_id("D"), name=f"dm-{user.lower()}", creator=self.bot.id, created=now,
                          is_im=True, im_user=user, members=[self.bot.id, user])
        self.channels[channel.id] = channel
        return channel

    def state(self) -> dict[str, Any]:
        return {
            "team": {"id": self.team_id, "name": self.team_name},
            "bot": {"user_id": self.bot.id, "bot_id": self.bot_id, "name": self.bot.name},
            "users": [{"id": u.id, "name": u.name, "real_name": u.real_name, "email": u.email, "tz": u.tz,
                       "is_bot": u.is_bot, "groups": [g for g, d in self.groups.items() if u.id in d["users"]]}
                      for u in self.users.values()],
            "usergroups": [{"id": g, **d, "users": list(d["users"])} for g, d in self.groups.items()],
            "channels": [c.to_state() for c in self.channels.values() if not c.is_im],
            "dms": [c.to_state() for c in self.channels.values() if c.is_im],
            "ephemerals": {u: list(m) for u, m in self.ephemerals.items()},
            "views": {u: list(v) for u, v in self.views.items()},
            "files": [{k: v for k, v in f.items() if k != "content"} | {"size": len(f.get("content", b""))}
                      for f in self.files.values()],
        }


def load_workspace(path: Path | str | None = None) -> Workspace:
    path = Path(path) if path else DEFAULT_WORKSPACE
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise WorkspaceError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise WorkspaceError(f"{path}: expected a mapping at the top level")
    try:
        team, bot_doc = doc["team"], doc["bot"]
        bot = User(id=bot_doc["user_id"], name=bot_doc.get("name", "rollbot"), real_name=bot_doc.get("name", "rollbot"),
                   email="", is_bot=True)
        ws = Workspace(team_id=team["id"], team_name=team["name"], bot=bot, bot_id=bot_doc.get("bot_id", "B0ROLLBOT"))
        ws.users[bot.id] = bot
        for i, u in enumerate(doc.get("users") or []):
            for key in ("id", "name", "email"):
                if key not in u:
                    raise WorkspaceError(f"{path}: users[{i}] needs `{key}`")
            ws.users[u["id"]] = User(id=u["id"], name=u["name"], real_name=u.get("real_name", u["name"]),
                                     email=u["email"], tz=u.get("tz", "America/New_York"))
        for g in doc.get("usergroups") or []:
            unknown = [m for m in g.get("users", []) if m not in ws.users]
            if unknown:
                raise WorkspaceError(f"{path}: usergroup {g.get('id')} names unknown users {unknown}")
            ws.groups[g["id"]] = {"handle": g["handle"], "name": g.get("name", g["handle"]), "users": list(g["users"])}
        humans = [u for u in ws.users.values() if not u.is_bot]
        for c in doc.get("channels") or []:
            members = c.get("members", "all")
            ws.channels[c["id"]] = Channel(id=c["id"], name=c["name"], creator=humans[0].id if humans else bot.id,
                                           created=0, topic=c.get("topic", ""), purpose=c.get("purpose", ""),
                                           members=[u.id for u in humans] if members == "all" else list(members))
    except (KeyError, TypeError) as exc:
        raise WorkspaceError(f"{path}: missing or malformed field {exc}") from None
    return ws
