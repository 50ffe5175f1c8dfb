"""Sandbox fidelity fixes found by running a peer incident bot (echoboomer/incident-bot) against it: each test
shows one behaviour of Slack the sandbox now reproduces (docs/sandbox-fidelity.md lists them with Slack's page)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.webserver import start_site
from bot.sandbox.scopes import every_scope
from bot.sandbox.server import SandboxServer


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(limits=False, scopes=every_scope())  # a peer bot, asking for more than Rollbot
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def received(sb: SandboxServer) -> AsyncIterator[list[dict[str, Any]]]:
    """An app that records every interactive payload and acks it."""
    seen: list[dict[str, Any]] = []

    async def app(request: web.Request) -> web.Response:
        seen.append(json.loads((await request.post())["payload"]))
        return web.Response(text="")

    application = web.Application()
    application.router.add_post("/", app)
    runner, port = await start_site(application)
    sb.app_url = f"http://127.0.0.1:{port}/"
    yield seen
    await runner.cleanup()


def client(sb: SandboxServer) -> AsyncWebClient:
    return AsyncWebClient(token=sb.bot_token, base_url=sb.api_url)


def _opt(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


YES, NO = _opt("Yes", "true"), _opt("No", "false")
SEV = [_opt("SEV1", "sev1"), _opt("SEV2", "sev2"), _opt("SEV3", "sev3")]


async def test_usergroups_list_answers_like_slack_with_users_and_counts_on_request(sb: SandboxServer) -> None:
    c = client(sb)
    plain = (await c.usergroups_list())["usergroups"]
    by_handle = {g["handle"]: g for g in plain}
    assert by_handle["dbas"]["id"] == "S300DBA" and by_handle["dbas"]["name"] == "Database admins"
    assert by_handle["dbas"]["is_usergroup"] is True and by_handle["dbas"]["team_id"] == sb.ws.team_id
    assert "users" not in by_handle["dbas"] and "user_count" not in by_handle["dbas"]
    full = {g["handle"]: g for g in (await c.usergroups_list(include_users=True, include_count=True))["usergroups"]}
    assert full["dbas"]["users"] == ["U300DB01", "U300DB02"] and full["dbas"]["user_count"] == 2
    # What a peer bot does at start-up: find a group by handle, then list its members.
    members = await c.usergroups_users_list(usergroup=by_handle["devops-leads"]["id"])
    assert members["users"] == ["U200DO01", "U200DO02"]
    with pytest.raises(SlackApiError) as err:
        await c.usergroups_users_list(usergroup="S999NONE")
    assert err.value.response["error"] == "no_such_subteam"


async def _open(sb: SandboxServer, received: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> dict[str, Any]:
    c = client(sb)
    posted = await c.chat_postMessage(channel="C0GENERAL", text="declare", blocks=[{
        "type": "actions", "block_id": "open", "elements": [
            {"type": "button", "action_id": "declare", "text": {"type": "plain_text", "text": "Declare"}}]}])
    await sb.click("U100TL01", "C0GENERAL", posted["ts"], text="Declare")
    opened = await c.views_open(trigger_id=received[-1]["trigger_id"], view={
        "type": "modal", "callback_id": "declare", "title": {"type": "plain_text", "text": "Declare"},
        "submit": {"type": "plain_text", "text": "Start"}, "blocks": blocks})
    return opened["view"]


async def test_view_submission_carries_section_accessories_and_inputs_as_slack_sends_them(
        sb: SandboxServer, received: list[dict[str, Any]]) -> None:
    view = await _open(sb, received, [
        {"type": "input", "block_id": "description", "label": {"type": "plain_text", "text": "Description"},
         "element": {"type": "plain_text_input", "action_id": "description"}},
        {"type": "input", "block_id": "impact", "label": {"type": "plain_text", "text": "Impact"},
         "element": {"type": "plain_text_input", "action_id": "impact", "initial_value": "None"}},
        {"type": "section", "block_id": "severity", "text": {"type": "mrkdwn", "text": "*Severity*"},
         "accessory": {"type": "static_select", "action_id": "set_severity", "options": SEV, "initial_option": SEV[2]}},
        {"type": "section", "block_id": "security", "text": {"type": "mrkdwn", "text": "*Security?*"},
         "accessory": {"type": "static_select", "action_id": "set_security", "options": [YES, NO],
                       "initial_option": NO}},
        {"type": "section", "block_id": "owner", "text": {"type": "mrkdwn", "text": "*Owner*"},
         "accessory": {"type": "users_select", "action_id": "set_owner"}},
        {"type": "actions", "block_id": "when", "elements": [
            {"type": "datepicker", "action_id": "date", "initial_date": "2026-12-01"}]},
    ])
    await sb.submit("U100TL01", view["id"], {"description": "checkout down", "severity": "SEV1"})
    values = received[-1]["view"]["state"]["values"]
    assert values == {
        "description": {"description": {"type": "plain_text_input", "value": "checkout down"}},
        "impact": {"impact": {"type": "plain_text_input", "value": "None"}},  # untouched: its initial value
        "severity": {"set_severity": {"type": "static_select", "selected_option": SEV[0]}},  # the accessory, chosen
        "security": {"set_security": {"type": "static_select", "selected_option": NO}},  # untouched: initial_option
        "owner": {"set_owner": {"type": "users_select", "selected_user": None}},  # nothing picked yet
        "when": {"date": {"type": "datepicker", "selected_date": "2026-12-01"}},
    }


async def test_blocks_without_ids_get_generated_ones_that_key_the_state(
        sb: SandboxServer, received: list[dict[str, Any]]) -> None:
    view = await _open(sb, received, [
        {"type": "input", "label": {"type": "plain_text", "text": "Why"}, "element": {"type": "plain_text_input"}}])
    block = view["blocks"][0]
    assert block["block_id"] and block["element"]["action_id"]  # views.open returns the ids Slack gave them
    await sb.submit("U100TL01", view["id"], {block["block_id"]: "because"})
    values = received[-1]["view"]["state"]["values"]
    assert values == {block["block_id"]: {block["element"]["action_id"]: {"type": "plain_text_input", "value": "because"}}}


def _checklist(ticked: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = [_opt("Freeze deploys", "freeze"), _opt("Page DBA", "dba"), _opt("Open status page", "status")]
    element: dict[str, Any] = {"type": "checkboxes", "action_id": "tick", "options": items}
    if ticked:
        element["initial_options"] = ticked
    return [{"type": "section", "block_id": "level", "text": {"type": "mrkdwn", "text": "Level"},
             "accessory": {"type": "static_select", "action_id": "level", "options": SEV, "initial_option": SEV[1]}},
            {"type": "actions", "block_id": "list", "elements": [element]}]


async def test_checkbox_clicks_accumulate_in_the_client_until_chat_update_resets_them(
        sb: SandboxServer, received: list[dict[str, Any]]) -> None:
    c = client(sb)
    posted = await c.chat_postMessage(channel="C0GENERAL", text="checklist", blocks=_checklist([]))
    channel, ts = posted["channel"], posted["ts"]

    def ticked() -> list[str]:
        return [o["value"] for o in received[-1]["actions"][0]["selected_options"]]

    await sb.click("U100TL01", channel, ts, text="Freeze deploys")
    assert ticked() == ["freeze"]
    await sb.click("U100TL01", channel, ts, text="Page DBA")  # before the app re-rendered: the client keeps both
    assert ticked() == ["freeze", "dba"]
    state = received[-1]["state"]["values"]
    assert [o["value"] for o in state["list"]["tick"]["selected_options"]] == ["freeze", "dba"]
    assert state["level"]["level"] == {"type": "static_select", "selected_option": SEV[1]}  # every stateful element
    await sb.click("U500OC01", channel, ts, text="Open status page")  # another user's client has its own state
    assert ticked() == ["status"]
    # The app re-renders with only "freeze" ticked (say it refused "dba"): every client now shows that.
    await c.chat_update(channel=channel, ts=ts, text="checklist", blocks=_checklist([_opt("Freeze deploys", "freeze")]))
    await sb.click("U100TL01", channel, ts, text="Open status page")
    assert ticked() == ["freeze", "status"]


async def test_conversations_list_gives_public_channels_unless_types_asks_for_more(sb: SandboxServer) -> None:
    c = client(sb)
    private = (await c.conversations_create(name="inc-private", is_private=True))["channel"]["id"]
    sb.ws.channels[private].members.remove(sb.ws.bot.id)  # a private channel the bot is not in
    mine = (await c.conversations_create(name="inc-mine", is_private=True))["channel"]["id"]
    default = {ch["id"] for ch in (await c.conversations_list())["channels"]}
    assert "C0GENERAL" in default and mine not in default and private not in default
    both = {ch["id"] for ch in (await c.conversations_list(types="public_channel,private_channel"))["channels"]}
    assert mine in both and private not in both and "C0GENERAL" in both
    with pytest.raises(SlackApiError) as err:
        await c.conversations_list(types="everything")
    assert err.value.response["error"] == "invalid_types"
