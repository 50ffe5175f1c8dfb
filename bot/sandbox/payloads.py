"""What Slack sends the app, built from the workspace the sandbox holds (pure functions)."""

from __future__ import annotations

from typing import Any

from bot.sandbox.workspace import Message, Workspace


class ClickError(ValueError):
    pass


def command_form(ws: Workspace, user: str, channel_id: str, command: str, text: str, response_url: str,
                 trigger_id: str) -> dict[str, str]:
    channel = ws.channels.get(channel_id)
    return {
        "token": "sandbox-verification-token", "team_id": ws.team_id, "team_domain": ws.team_name.lower(),
        "channel_id": channel_id, "channel_name": channel.name if channel else "unknown", "user_id": user,
        "user_name": ws.users[user].name, "command": command, "text": text, "api_app_id": "A0ROLLBOT",
        "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger_id,
    }


def _elements(blocks: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = []
    for block in blocks or []:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("type") not in (None, "mrkdwn", "plain_text", "image"):
                found.append((block, element))
        if isinstance(block.get("accessory"), dict):
            found.append((block, block["accessory"]))
        if block.get("type") == "input" and isinstance(block.get("element"), dict):
            found.append((block, block["element"]))
    return found


def _text(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else str(obj or "")


# Elements whose choice is not among their own options: the value names what was picked (a user ID).
PICKERS = ("users_select",)


def find_action(blocks: list[dict[str, Any]], action_id: str | None, text: str | None,
                value: str | None, block_id: str | None = None,
                ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The (block, element, option) a user would click: by action_id or by the visible text of a button or an
    option (checkboxes, selects); `value` narrows buttons sharing an action_id, or names an option by value;
    `block_id` (what the web client knows) names the block exactly."""
    for block, element in _elements(blocks):
        options = [o for group in element.get("option_groups") or [] for o in group.get("options") or []] \
            or element.get("options") or []
        if action_id is not None and element.get("action_id") != action_id:
            continue
        if block_id is not None and block.get("block_id") != block_id:
            continue
        if element.get("type") in PICKERS and action_id is not None:
            return block, element, None if value is None else {"value": value}
        if element.get("type") == "button":
            if (text is None or _text(element.get("text")) == text) and (value is None or element.get("value") == value):
                return block, element, None
            continue
        for option in options:
            if (text is not None and _text(option.get("text")) == text) or \
                    (text is None and value is not None and option.get("value") == value):
                return block, element, option
        if action_id is not None and text is None and value is None:
            return block, element, None
    raise ClickError(f"no clickable element with action_id={action_id!r} text={text!r} value={value!r}")


# Stateful element type -> (its key in `state.values`, the field giving its initial value), from Slack's
# reference of view and message state (docs.slack.dev/reference/interaction-payloads/view-interactions-payload).
STATE_FIELDS: dict[str, tuple[str, str]] = {
    **{t: ("value", "initial_value") for t in ("plain_text_input", "number_input", "email_text_input",
                                              "url_text_input")},
    "rich_text_input": ("rich_text_value", "initial_value"),
    **{t: ("selected_option", "initial_option") for t in ("static_select", "external_select", "radio_buttons")},
    **{t: ("selected_options", "initial_options") for t in ("multi_static_select", "multi_external_select",
                                                           "checkboxes")},
    "users_select": ("selected_user", "initial_user"), "multi_users_select": ("selected_users", "initial_users"),
    "conversations_select": ("selected_conversation", "initial_conversation"),
    "multi_conversations_select": ("selected_conversations", "initial_conversations"),
    "channels_select": ("selected_channel", "initial_channel"),
    "multi_channels_select": ("selected_channels", "initial_channels"),
    "datepicker": ("selected_date", "initial_date"), "timepicker": ("selected_time", "initial_time"),
    "datetimepicker": ("selected_date_time", "initial_date_time"),
}
OPTION_KINDS = {"static_select", "external_select", "radio_buttons"}
MULTI_OPTION_KINDS = {"multi_static_select", "multi_external_select", "checkboxes"}


def stateful_elements(blocks: list[dict[str, Any]] | None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Every element with a value, wherever Slack allows it: input blocks, section accessories, actions blocks."""
    return [(b, e) for b, e in _elements(blocks or []) if e.get("type") in STATE_FIELDS]


def initial_state(element: dict[str, Any]) -> dict[str, Any]:
    """The element's state as Slack's client first shows it: its initial value, or none chosen yet."""
    kind = element["type"]
    key, initial = STATE_FIELDS[kind]
    value = element.get(initial)
    if kind in MULTI_OPTION_KINDS or kind.startswith("multi_"):
        value = list(value or [])
    return {"type": kind, key: value}


def action_payload(element: dict[str, Any], block: dict[str, Any], option: dict[str, Any] | None,
                   action_ts: str, current: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `actions[0]` entry and the element's state, as Slack sends them after the click. `current` is what the
    user's client shows now (their earlier clicks since the message was last rendered); else its initial state."""
    kind = element.get("type")
    action: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block.get("block_id"), "type": kind,
                              "action_ts": action_ts}
    state: dict[str, Any] = {"type": kind}
    if kind == "button":
        action |= {"text": element.get("text"), "value": element.get("value")}
        if element.get("style"):
            action["style"] = element["style"]
    elif kind in MULTI_OPTION_KINDS:
        selected = list((current or initial_state(element))["selected_options"])
        if option is not None:
            values = [o["value"] for o in selected]
            selected = [o for o in selected if o["value"] != option["value"]] if option["value"] in values \
                else selected + [option]
        action["selected_options"] = selected
        state["selected_options"] = selected
    elif kind in OPTION_KINDS or kind == "overflow":
        if option is None:
            raise ClickError("pick an option of the select by its text or value")
        action["selected_option"] = option
        state["selected_option"] = option
    elif kind == "users_select":
        if option is None:
            raise ClickError("pick a user")
        action["selected_user"] = option["value"]
        state["selected_user"] = option["value"]
    return action, state


def click(message: Message, user: str, block: dict[str, Any], element: dict[str, Any], option: dict[str, Any] | None,
          action_ts: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A user's click on a message: `actions[0]` and the message's whole `state.values` as their client holds it.
    The client remembers the new state until the app updates the message (chat.update clears it)."""
    shown = message.client_state.setdefault(user, {})
    key = (str(block.get("block_id")), str(element.get("action_id")))
    action, state = action_payload(element, block, option, action_ts, shown.get(key))
    if element.get("type") in STATE_FIELDS:
        shown[key] = state
    values: dict[str, dict[str, Any]] = {}
    for b, e in stateful_elements(message.blocks):
        k = (str(b.get("block_id")), str(e.get("action_id")))
        values.setdefault(k[0], {})[k[1]] = shown.get(k) or initial_state(e)
    return action, values


def block_actions(ws: Workspace, user: str, channel_id: str, message: Message, action: dict[str, Any],
                  values: dict[str, dict[str, Any]], response_url: str, trigger_id: str,
                  is_ephemeral: bool = False) -> dict[str, Any]:
    channel = ws.channels.get(channel_id)
    return {
        "type": "block_actions",
        "user": {"id": user, "username": ws.users[user].name, "name": ws.users[user].name, "team_id": ws.team_id},
        "api_app_id": "A0ROLLBOT", "token": "sandbox-verification-token",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": channel_id,
                      "is_ephemeral": is_ephemeral},
        "trigger_id": trigger_id, "team": {"id": ws.team_id, "domain": ws.team_name.lower()},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel.name if channel else "unknown"},
        "message": message.to_api(), "state": {"values": values}, "response_url": response_url,
        "actions": [action],
    }


def view_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every stateful element of the view (input blocks, section accessories, actions blocks), as Slack sends it:
    what the user filled in (`values`, by block_id or action_id), else the element's initial value."""
    state: dict[str, dict[str, Any]] = {}
    for block, element in stateful_elements(view.get("blocks")):
        block_id, action_id = block.get("block_id"), element.get("action_id")
        given = values.get(str(block_id), values.get(str(action_id)))
        entry = initial_state(element)
        kind = element["type"]
        key = STATE_FIELDS[kind][0]
        if given is not None:
            if kind in OPTION_KINDS:
                entry[key] = _option(element, given)
            elif kind in MULTI_OPTION_KINDS:
                entry[key] = [_option(element, w) for w in (given if isinstance(given, list) else [given])]
            elif kind.startswith("multi_"):
                entry[key] = list(given) if isinstance(given, list) else [given]
            elif key == "value":
                entry[key] = str(given)
            else:
                entry[key] = given
        state.setdefault(str(block_id), {})[str(action_id)] = entry
    return state


def _option(element: dict[str, Any], wanted: Any) -> dict[str, Any]:
    for option in element.get("options") or []:
        if option.get("value") == wanted or _text(option.get("text")) == wanted:
            return option
    for group in element.get("option_groups") or []:
        for option in group.get("options") or []:
            if option.get("value") == wanted or _text(option.get("text")) == wanted:
                return option
    raise ClickError(f"no option {wanted!r} in {element.get('action_id')}")


def view_submission(ws: Workspace, user: str, view: dict[str, Any], values: dict[str, Any],
                    trigger_id: str) -> dict[str, Any]:
    submitted = dict(view) | {"state": {"values": view_state(view, values)}}
    return {
        "type": "view_submission", "team": {"id": ws.team_id, "domain": ws.team_name.lower()},
        "user": {"id": user, "username": ws.users[user].name, "name": ws.users[user].name, "team_id": ws.team_id},
        "api_app_id": "A0ROLLBOT", "token": "sandbox-verification-token", "trigger_id": trigger_id,
        "view": submitted, "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }


def event_callback(ws: Workspace, event: dict[str, Any], event_id: str, event_time: int) -> dict[str, Any]:
    return {"token": "sandbox-verification-token", "team_id": ws.team_id, "api_app_id": "A0ROLLBOT", "event": event,
            "type": "event_callback", "event_id": event_id, "event_time": event_time,
            "authorizations": [{"team_id": ws.team_id, "user_id": ws.bot.id, "is_bot": True}]}
