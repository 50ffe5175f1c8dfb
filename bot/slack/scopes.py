"""The Web API methods the bot calls, the Events API events it subscribes to, and the bot token scope each needs.

The app asks a workspace for exactly the scopes in this table (manifest.yml's `oauth_config.scopes.bot`);
tests/cli/test_scopes.py scans the code for every Web API call and event listener and checks both directions.
A method needing no scope maps to an empty tuple. Where a Conversations method accepts several scopes (one per
conversation type), only the scope for the type the bot uses is listed: public incident channels
(`channels:manage`, not `groups:write`) and one-to-one DMs (`im:write`, not `mpim:write`).
"""

from __future__ import annotations

from collections.abc import Iterable

SLACK_METHOD_DOCS = "https://docs.slack.dev/reference/methods/"
SLACK_EVENT_DOCS = "https://docs.slack.dev/reference/events/"

# Web API method -> bot scopes it needs (Slack's method reference, "Required scopes: Bot token").
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),  # identify the bot user at start-up and in /readyz
    # Checklists, decisions, progress, DMs; chat:write.public for the triage post (bot/alerts/triage.py): it goes
    # to a public channel the bot has not joined, which Slack refuses (not_in_channel) without it.
    "chat.postMessage": ("chat:write", "chat:write.public"),
    "chat.update": ("chat:write",),  # every re-render
    "chat.postEphemeral": ("chat:write",),  # refusals and private notes
    "conversations.create": ("channels:manage",),  # the incident channel (public)
    "conversations.invite": ("channels:manage",),  # responders by role
    "conversations.setTopic": ("channels:manage",),  # the topic follows the phase
    "conversations.setPurpose": ("channels:manage",),
    "conversations.open": ("im:write",),  # pages and escalation DMs
    "conversations.list": ("channels:read",),  # adopting an incident channel a crashed process left unrecorded
    # A keyed post or DM whose answer was lost, found by its metadata: in incident channels and in page DMs.
    "conversations.history": ("channels:history", "im:history"),
    "conversations.replies": ("channels:history",),  # the same, for a keyed reply in the incident thread
    "pins.add": ("pins:write",),  # the incident header
    "bookmarks.add": ("bookmarks:write",),  # the alert's source link, the status page, the report
    "bookmarks.edit": ("bookmarks:write",),
    "users.info": ("users:read",),  # names in comms drafts
    "users.lookupByEmail": ("users:read.email",),  # roster roles given by email
    "usergroups.users.list": ("usergroups:read",),  # roster roles given by user group
    "views.open": (),  # modals open on a trigger_id, no scope
    "files.getUploadURLExternal": ("files:write",),  # the post-incident report (files_upload_v2)
    "files.completeUploadExternal": ("files:write",),
}

# Events API event -> bot scope it needs to be delivered (Slack's event reference, "Required scopes").
EVENT_SCOPES: dict[str, tuple[str, ...]] = {
    "app_mention": ("app_mentions:read",),
}

# Manifest features that need a scope of their own, beyond the methods they lead to.
FEATURE_SCOPES: dict[str, tuple[str, ...]] = {
    "slash_commands": ("commands",),  # /rollback
    "shortcuts": ("commands",),  # the "Add to incident timeline" message shortcut
}


def required_scopes(methods: Iterable[str], events: Iterable[str] = (), features: Iterable[str] = ()) -> set[str]:
    """The bot scopes that calling `methods`, receiving `events` and declaring `features` need. A method or
    event not in the table is a KeyError: add it to the table (with its scope from Slack's docs) first."""
    scopes: set[str] = set()
    for method in methods:
        scopes.update(METHOD_SCOPES[method])
    for event in events:
        scopes.update(EVENT_SCOPES[event])
    for feature in features:
        scopes.update(FEATURE_SCOPES.get(feature, ()))
    return scopes


def bot_scopes() -> list[str]:
    """Every scope the bot needs: the manifest's `oauth_config.scopes.bot`, sorted."""
    return sorted(required_scopes(METHOD_SCOPES, EVENT_SCOPES, FEATURE_SCOPES))


def method_doc(method: str) -> str:
    return SLACK_METHOD_DOCS + method
