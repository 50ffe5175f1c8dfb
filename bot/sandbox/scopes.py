"""The scopes the sandbox's installed app holds, and the scopes Slack accepts for each Web API method.

This table is the sandbox's own, written from Slack's method reference ("Required scopes", bot token), not
derived from the bot's table (bot/slack/scopes.py): the point is to catch the bot calling a method its manifest
does not ask for. Where Slack lists several scopes (the Conversations API: one per conversation type, in the
order public channel, private channel, DM, group DM), the call needs the one for the conversation it names;
Slack's `missing_scope` error names them all in `needed`, comma-separated.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"

KINDS = ("public", "private", "im", "mpim")  # the order of the per-type scopes below
_MANAGE = ("channels:manage", "groups:write", "im:write", "mpim:write")
_READ = ("channels:read", "groups:read", "im:read", "mpim:read")
_HISTORY = ("channels:history", "groups:history", "im:history", "mpim:history")

# Web API method -> the bot scopes Slack accepts for it (any one); () needs none.
ACCEPTED: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.postEphemeral": ("chat:write",),
    "chat.getPermalink": (),
    "conversations.create": _MANAGE,
    "conversations.invite": _MANAGE,
    "conversations.setTopic": _MANAGE,
    "conversations.setPurpose": _MANAGE,
    "conversations.open": _MANAGE,
    "conversations.archive": _MANAGE,
    "conversations.join": ("channels:join",),
    "conversations.info": _READ,
    "conversations.list": _READ,
    "conversations.members": _READ,
    "conversations.history": _HISTORY,
    "conversations.replies": _HISTORY,
    "pins.add": ("pins:write",),
    "bookmarks.add": ("bookmarks:write",),
    "bookmarks.edit": ("bookmarks:write",),
    "reactions.add": ("reactions:write",),
    "users.info": ("users:read",),
    "users.list": ("users:read",),
    "users.lookupByEmail": ("users:read.email",),
    "usergroups.list": ("usergroups:read",),
    "usergroups.users.list": ("usergroups:read",),
    "views.open": (),
    "views.update": (),
    "views.publish": (),
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}


def manifest_scopes(path: Path = MANIFEST) -> frozenset[str]:
    """The bot scopes an admin grants when installing the app from `path` (oauth_config.scopes.bot)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return frozenset(doc["oauth_config"]["scopes"]["bot"])


def every_scope() -> frozenset[str]:
    """Every scope any method here accepts, plus the posting ones: for running a bot that asks for more."""
    return frozenset(s for scopes in ACCEPTED.values() for s in scopes) | {"chat:write.public", "commands",
                                                                           "app_mentions:read"}


def missing(method: str, granted: Iterable[str], kind: str | None = None) -> tuple[str, ...] | None:
    """The scopes to name in `needed` when the app may not call `method` on a conversation of `kind` (one of
    KINDS; None: not known, any accepted scope will do), else None."""
    accepted = ACCEPTED[method]
    if not accepted:
        return None
    usable = {accepted[KINDS.index(kind)]} if kind is not None and len(accepted) == len(KINDS) else set(accepted)
    return None if usable & set(granted) else accepted
