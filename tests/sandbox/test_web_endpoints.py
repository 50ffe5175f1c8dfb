"""What the web client stands on, without a browser: the page and its files served offline with a strict
Content Security Policy, a change stream that moves with every workspace change, and the control API calls the
page makes (a click named by its block, a user picked in a users select, a message said, a modal closed)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aiohttp import web

from bot.core.webserver import start_site
from bot.sandbox.server import SandboxServer

WEB = Path(__file__).resolve().parents[2] / "bot" / "sandbox" / "web"


@pytest.fixture
async def app() -> AsyncIterator[tuple[SandboxServer, list[dict[str, Any]]]]:
    """A sandbox delivering to a tiny app that records each payload and answers 200."""
    received: list[dict[str, Any]] = []

    async def events(request: web.Request) -> web.Response:
        raw = await request.text()
        form = dict(parse_qsl(raw))
        received.append(json.loads(form["payload"]) if "payload" in form else json.loads(raw))
        return web.Response(text="")

    bolt = web.Application()
    bolt.router.add_post("/slack/events", events)
    runner, port = await start_site(bolt)
    sb = SandboxServer(limits=False, app_url=f"http://127.0.0.1:{port}/slack/events")
    await sb.start()
    yield sb, received
    await sb.stop()
    await runner.cleanup()


async def post(sb: SandboxServer, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(f"{sb.base_url}{path}", json=body) as r:
        return r.status, await r.json()


def bot_message(sb: SandboxServer, blocks: list[dict[str, Any]]) -> str:
    from bot.sandbox.workspace import Message

    ts = sb.api.next_ts()
    sb.ws.channels["C0GENERAL"].messages.append(Message(ts=ts, user=sb.ws.bot.id, text="t", blocks=blocks,
                                                        bot_id=sb.ws.bot_id))
    return ts


async def test_the_page_is_served_offline_with_its_own_files_only(app: Any) -> None:
    sb, _ = app
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sb.base_url}/") as r:
            page = await r.text()
            assert r.status == 200 and "script-src 'self'" in r.headers["Content-Security-Policy"]
        for name in re.findall(r'(?:src|href)="(/_sandbox/web/[^"]+)"', page):
            async with http.get(f"{sb.base_url}{name}") as r:
                assert r.status == 200, name
        async with http.get(f"{sb.base_url}/_sandbox/web/../server.py") as r:
            assert r.status == 404
    assert not re.search(r"https?://", page), "no CDN, no external fonts"
    script = (WEB / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(", script), "text is never parsed as HTML"


async def test_the_stream_announces_each_change_of_the_workspace(app: Any) -> None:
    sb, _ = app
    async with aiohttp.ClientSession() as http, http.get(f"{sb.base_url}/_sandbox/stream") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        first = await asyncio.wait_for(stream.content.readline(), 10)
        assert first.startswith(b"data: ")
        await stream.content.readline()
        async with http.post(f"{sb.api_url}chat.postMessage", data={"token": sb.bot_token, "channel": "C0GENERAL",
                                                                      "text": "hello"}) as r:
            assert (await r.json())["ok"]
        changed = await asyncio.wait_for(stream.content.readline(), 10)
        assert int(changed.split(b": ")[1]) > int(first.split(b": ")[1])
        async with http.get(f"{sb.base_url}/_sandbox/ui/state") as r:
            state = await r.json()
    assert "calls" not in state and state["version"] == sb.feed.version
    assert state["channels"][0]["messages"][-1]["text"] == "hello"


async def test_a_click_names_its_block_and_a_users_select_sends_the_user(app: Any) -> None:
    sb, received = app
    same = {"type": "checkboxes", "action_id": "tick", "options": [{"text": {"type": "plain_text", "text": "a"},
                                                                    "value": "v"}]}
    ts = bot_message(sb, [{"type": "actions", "block_id": "first", "elements": [same]},
                          {"type": "actions", "block_id": "second", "elements": [dict(same)]},
                          {"type": "actions", "block_id": "who", "elements": [{"type": "users_select", "action_id": "pick"}]}])
    status, _ = await post(sb, "/_sandbox/click", {"user": "U100TL01", "channel": "C0GENERAL", "ts": ts,
                                                   "action_id": "tick", "block_id": "second", "value": "v"})
    assert status == 200 and received[-1]["actions"][0]["block_id"] == "second"
    # As Slack sends it: every stateful element of the message, the clicked one with its new selection.
    assert received[-1]["state"]["values"] == {
        "second": {"tick": {"type": "checkboxes", "selected_options": [same["options"][0]]}},
        "first": {"tick": {"type": "checkboxes", "selected_options": []}},
        "who": {"pick": {"type": "users_select", "selected_user": None}}}
    await post(sb, "/_sandbox/click", {"user": "U100TL01", "channel": "C0GENERAL", "ts": ts, "action_id": "pick",
                                       "block_id": "who", "value": "U200DO01"})
    assert received[-1]["actions"][0]["selected_user"] == "U200DO01"


async def test_saying_a_message_posts_it_and_a_mention_reaches_the_app(app: Any) -> None:
    sb, received = app
    status, answer = await post(sb, "/_sandbox/say", {"user": "U100TL01", "channel": "C0GENERAL",
                                                      "text": f"<@{sb.ws.bot.id}> status &lt;b&gt;"})
    assert status == 200
    said = sb.ws.channels["C0GENERAL"].messages[-1]
    assert said.user == "U100TL01" and said.ts == answer["ts"]
    assert received[-1]["event"]["type"] == "app_mention" and received[-1]["event"]["ts"] == said.ts
    status, answer = await post(sb, "/_sandbox/say", {"user": "U100TL01", "channel": "C0GENERAL", "text": "no mention"})
    assert status == 200 and answer["delivered"] is None and len(received) == 1
    status, answer = await post(sb, "/_sandbox/say", {"user": "U100TL01", "channel": "nope", "text": "x"})
    assert status == 400 and "not in" in answer["error"]


async def test_closing_a_modal_removes_only_that_view(app: Any) -> None:
    sb, _ = app
    sb.ws.views["U100TL01"] = [{"id": "V1", "type": "modal"}, {"id": "V2", "type": "modal"}]
    status, _ = await post(sb, "/_sandbox/close", {"user": "U100TL01", "view_id": "V2"})
    assert status == 200 and [v["id"] for v in sb.ws.views["U100TL01"]] == ["V1"]
    status, answer = await post(sb, "/_sandbox/close", {"user": "U100TL01", "view_id": "V2"})
    assert status == 400 and "no open view" in answer["error"]
