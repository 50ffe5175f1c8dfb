"""The web client renders Block Kit as Slack does and sends what Slack would: a message with every kind of block
and element, its states (ticked boxes, selected options), confirm dialogs, threads, DMs, ephemerals only for their
user, pins, bookmarks, unread markers arriving live, and a modal with the app's errors. The sandbox delivers to a
small recording app here, so each click's payload is checked as the app received it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from bot.core.webserver import start_site
from bot.sandbox.scopes import every_scope
from bot.sandbox.server import SandboxServer
from tests.support.browser import browser_page

pytestmark = pytest.mark.slow
TL, DO = "U100TL01", "U200DO01"


def opt(text: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": text}, "value": value}


def txt(text: str, kind: str = "plain_text") -> dict[str, Any]:
    return {"type": kind, "text": text}


BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Rollback incident"}},
    {"type": "section", "text": txt(f"*Bold* _it_ `code` <@{TL}> <https://example.com|a link> :rotating_light:", "mrkdwn"),
     "fields": [{"type": "mrkdwn", "text": "*Level*\nImmediate"}, {"type": "mrkdwn", "text": "*Owner*\nTara"}],
     "accessory": {"type": "overflow", "action_id": "more",
                   "options": [opt("Show timeline", "timeline"), opt("Contacts", "contacts")]}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "declared at 09:00"}]},
    {"type": "divider"},
    {"type": "actions", "block_id": "buttons", "elements": [
        {"type": "button", "action_id": "go", "text": txt("Approve"), "style": "primary", "value": "yes"},
        {"type": "button", "action_id": "stop", "text": txt("Abort"), "style": "danger", "value": "no",
         "confirm": {"title": txt("Abort the run?"), "text": txt("It *stops* now.", "mrkdwn"),
                     "confirm": txt("Abort it"), "deny": txt("Keep going")}},
        {"type": "static_select", "action_id": "level", "placeholder": txt("Level"),
         "options": [opt("Immediate", "immediate"), opt("Urgent", "urgent")], "initial_option": opt("Immediate", "immediate")},
        {"type": "users_select", "action_id": "assign", "placeholder": txt("Assign")}]},
    {"type": "actions", "block_id": "cl", "elements": [{"type": "checkboxes", "action_id": "tick",
                                                        "options": [opt("Backup taken", "b"), opt("Team told", "t")],
                                                        "initial_options": [opt("Backup taken", "b")]}]},
    {"type": "image", "image_url": "https://example.com/graph.png", "alt_text": "error rate graph"},
]

MODAL = {"type": "modal", "callback_id": "why", "title": {"type": "plain_text", "text": "Skip step"},
         "submit": {"type": "plain_text", "text": "Skip"}, "close": {"type": "plain_text", "text": "Cancel"},
         "blocks": [{"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason"},
                     "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True}}]}


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[SandboxServer, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def events(request: web.Request) -> web.Response:
        payload = json.loads(dict(parse_qsl(await request.text()))["payload"])
        received.append(payload)
        if payload["type"] == "view_submission":
            reason = payload["view"]["state"]["values"]["reason"]["reason"]["value"]
            if not reason:
                return web.json_response({"response_action": "errors", "errors": {"reason": "Say why the step is skipped."}})
        return web.Response(text="")

    app = web.Application()
    app.router.add_post("/slack/events", events)
    runner, port = await start_site(app)
    # The app here is a test app calling methods Rollbot does not (conversations.join): every scope granted.
    sb = SandboxServer(limits=False, app_url=f"http://127.0.0.1:{port}/slack/events", scopes=every_scope())
    await sb.start()
    yield sb, received
    await sb.stop()
    await runner.cleanup()


async def api(sb: SandboxServer, method: str, **args: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(
            f"{sb.api_url}{method}", json=args, headers={"Authorization": f"Bearer {sb.bot_token}"}) as r:
        body = await r.json()
    assert body["ok"], body
    return body


async def test_every_block_and_element_renders_and_acts_as_in_slack(sandbox: Any) -> None:
    sb, received = sandbox
    await api(sb, "conversations.join", channel="C0GENERAL")
    posted = await api(sb, "chat.postMessage", channel="C0GENERAL", text="Rollback incident", blocks=BLOCKS)
    ts = posted["ts"]
    await api(sb, "pins.add", channel="C0GENERAL", timestamp=ts)
    await api(sb, "bookmarks.add", channel_id="C0GENERAL", title="Runbook", type="link", link="https://example.com/runbook")
    await api(sb, "chat.postMessage", channel="C0GENERAL", thread_ts=ts, text="Step 1 is late")
    await api(sb, "chat.postEphemeral", channel="C0GENERAL", user=TL, text="Only Tara sees this")
    await api(sb, "chat.postEphemeral", channel="C0GENERAL", user=DO, text="Only Tom sees this")
    dm = (await api(sb, "conversations.open", users=TL))["channel"]["id"]
    await api(sb, "chat.postMessage", channel=dm, text="You are paged")

    async with browser_page(sb.base_url, TL) as page:
        message = page.locator(f'#messages .message[data-ts="{ts}"]')
        await message.wait_for()
        assert await message.locator(".bk-header").inner_text() == "Rollback incident"
        section = message.locator(".bk-section").first
        assert await section.locator("b").all_inner_texts() == ["Bold", "Level", "Owner"]
        assert await section.locator("i").inner_text() == "it"
        assert await section.locator("code").inner_text() == "code"
        assert await section.locator(".mention").first.inner_text() == "@Tara Lin"
        assert await section.locator("a").get_attribute("href") == "https://example.com/"
        assert "🚨" in await section.inner_text()
        assert await section.locator(".bk-fields > *").count() == 2
        assert await message.locator(".bk-context").inner_text() == "declared at 09:00"
        assert await message.locator("hr.bk-divider").count() == 1
        assert "primary" in (await message.locator('button[data-action-id="go"]').get_attribute("class") or "")
        assert "danger" in (await message.locator('button[data-action-id="stop"]').get_attribute("class") or "")
        assert await message.locator('select[data-action-id="level"]').input_value() == "immediate"
        assert await message.locator('[data-block-id="cl"] input[data-value="b"]').is_checked()
        assert not await message.locator('[data-block-id="cl"] input[data-value="t"]').is_checked()
        assert await message.locator('.bk-image img').get_attribute("alt") == "error rate graph"
        assert await message.locator(".pin-mark").count() == 1 and await page.inner_text("#pin-count") == "1"
        assert await page.locator("#bookmarks a").inner_text() == "🔖 Runbook"
        assert await page.locator("#messages .message.ephemeral").inner_text() != ""
        assert "Only Tara sees this" in await page.inner_text("#messages")
        assert "Only Tom sees this" not in await page.inner_text("#messages")

        # A button with a confirm dialog sends nothing when denied, and the click when confirmed.
        await message.locator('button[data-action-id="stop"]').click()
        dialog = page.locator("#confirm-layer .confirm")
        assert await dialog.locator("header").inner_text() == "Abort the run?"
        await dialog.get_by_role("button", name="Keep going").click()
        await dialog.wait_for(state="detached")
        await message.locator('button[data-action-id="go"]').click()
        await until(lambda: len(received) == 1)
        assert received[0]["actions"][0]["action_id"] == "go", "the denied Abort sent nothing"
        await message.locator('button[data-action-id="stop"]').click()
        await dialog.get_by_role("button", name="Abort it").click()
        await until(lambda: len(received) == 2)
        assert received[1]["actions"][0]["value"] == "no"

        # Selects, the overflow menu and a checkbox send their choice with the message's state.
        await message.locator('select[data-action-id="level"]').select_option("urgent")
        await until(lambda: len(received) == 3)
        assert received[2]["actions"][0]["selected_option"]["value"] == "urgent"
        await message.locator('select[data-action-id="assign"]').select_option(DO)
        await until(lambda: len(received) == 4)
        assert received[3]["actions"][0]["selected_user"] == DO
        await message.locator('button[data-action-id="more"]').click()
        await message.get_by_role("button", name="Contacts").click()
        await until(lambda: len(received) == 5)
        assert received[4]["actions"][0]["selected_option"]["value"] == "contacts"
        await message.locator('[data-block-id="cl"] input[data-value="t"]').click()
        await until(lambda: len(received) == 6)
        assert [o["value"] for o in received[5]["actions"][0]["selected_options"]] == ["b", "t"]
        assert all(r["user"]["id"] == TL and r["container"]["message_ts"] == ts for r in received)

        # The thread, the DM, and an unread marker that arrives while looking elsewhere.
        await message.locator(".thread-link").click()
        assert "Step 1 is late" in await page.locator("#thread-messages").inner_text()
        await page.locator(f'#dms li[data-channel="{dm}"]').click()
        assert "You are paged" in await page.inner_text("#messages")
        await api(sb, "chat.postMessage", channel="C0GENERAL", text="something new")
        await page.locator('#channels li[data-name="general"].unread .badge').wait_for()

        # A modal: the app's error shown under its field, then accepted and closed.
        sb.ws.views.setdefault(TL, []).append(MODAL | {"id": "V0TEST", "hash": "1"})
        sb.feed.bump()
        modal = page.locator('.modal[data-callback-id="why"]')
        await modal.locator(".submit").click()
        error = modal.locator('[data-block-id="reason"] .error:not([hidden])')
        assert await error.inner_text() == "Say why the step is skipped."
        await modal.locator("textarea").fill("covered by the approval")
        await modal.locator(".submit").click()
        await modal.wait_for(state="detached")
        assert received[-1]["view"]["state"]["values"]["reason"]["reason"]["value"] == "covered by the approval"
        assert not sb.ws.views[TL]


async def until(check: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 30
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)

