"""Slack's rate-limit tiers for the Web API methods the bot uses (api.slack.com/docs/rate-limits)."""

from __future__ import annotations

# Slack's published tiers (per minute, per workspace and app).
TIERS = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIERS = {
    "auth.test": 4, "chat.update": 4, "chat.getPermalink": 4, "users.info": 4, "users.lookupByEmail": 3,
    "users.list": 2, "usergroups.list": 2, "usergroups.users.list": 2, "conversations.create": 2, "conversations.invite": 3,
    "conversations.join": 3, "conversations.info": 3, "conversations.list": 2, "conversations.members": 4,
    "conversations.history": 3, "conversations.replies": 3, "conversations.setTopic": 3,
    "conversations.setPurpose": 3, "conversations.open": 3, "conversations.archive": 2, "pins.add": 2,
    "bookmarks.add": 2, "bookmarks.edit": 2, "reactions.add": 3, "views.open": 4, "views.update": 4, "views.publish": 4,
    "files.getUploadURLExternal": 4, "files.completeUploadExternal": 4, "apps.connections.open": 1,
}
