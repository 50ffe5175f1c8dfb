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


def find_action(blocks: list[dict[str, Any]], action_id: str | None, text: str | None,
                value: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """The (block, element, option) a user would click: by action_id or by the visible text of a button or an
    option (checkboxes, selects); `value` narrows buttons sharing an action_id, or names an option by value."""
    for block, element in _elements(blocks):
        options = element.get("options") or []
        if action_id is not None and element.get("action_id") != action_id:
            continue
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


def action_payload(element: dict[str, Any], block: dict[str, Any], option: dict[str, Any] | None,
                   action_ts: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `actions[0]` entry and the element's state, as Slack sends them after the click."""
    kind = element.get("type")
    action: dict[str, Any] = {"action_id": element.get("action_id"), "block_id": block.get("block_id"), "type": kind,
                              "action_ts": action_ts}
    state: dict[str, Any] = {"type": kind}
    if kind == "button":
        action |= {"text": element.get("text"), "value": element.get("value")}
        if element.get("style"):
            action["style"] = element["style"]
    elif kind == "checkboxes":
        selected = list(element.get("initial_options") or [])
        if option is not None:
            values = [o["value"] for o in selected]
            selected = [o for o in selected if o["value"] != option["value"]] if option["value"] in values \
                else selected + [option]
        action["selected_options"] = selected
        state["selected_options"] = selected
    elif kind in ("static_select", "radio_buttons", "overflow"):
        if option is None:
            raise ClickError("pick an option of the select by its text or value")
        action["selected_option"] = option
        state["selected_option"] = option
    return action, state


def block_actions(ws: Workspace, user: str, channel_id: str, message: Message, action: dict[str, Any],
                  state: dict[str, Any], response_url: str, trigger_id: str, is_ephemeral: bool = False) -> dict[str, Any]:
    channel = ws.channels.get(channel_id)
    values: dict[str, dict[str, Any]] = {}
    if action.get("block_id") and action.get("type") != "button":
        values[action["block_id"]] = {action["action_id"]: state}
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
    """Typed values per input block, as the user filled them: {block_id: text or option text/value or [..]}."""
    state: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id, action_id = block.get("block_id"), element.get("action_id")
        given = values.get(block_id, values.get(action_id))
        kind = element.get("type")
        entry: dict[str, Any] = {"type": kind}
        if kind in ("plain_text_input", "number_input", "email_text_input", "url_text_input"):
            # What the user left untouched keeps the field's initial value, as in Slack's client.
            entry["value"] = element.get("initial_value") if given is None else str(given)
        elif kind in ("static_select", "radio_buttons"):
            option = _option(element, given) if given is not None else element.get("initial_option")
            entry["selected_option"] = option
        elif kind == "checkboxes":
            if given is None:
                entry["selected_options"] = list(element.get("initial_options") or [])
            else:
                wanted = given if isinstance(given, list) else [given]
                entry["selected_options"] = [_option(element, w) for w in wanted]
        else:
            entry["value"] = given
        state[block_id] = {action_id: entry}
    return state


def _option(element: dict[str, Any], wanted: Any) -> dict[str, Any]:
    for option in element.get("options") or []:
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
