"""The sandbox behaves like Slack toward a bot: signatures, response shapes, error codes, limits, faults and
Slack's side of the conversation (commands, clicks, view submissions, events, response_url)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.webserver import start_site
from bot.sandbox.scopes import every_scope
from bot.sandbox.server import SandboxServer
from bot.sandbox.signing import sign

SLACK_VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
    "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
    "%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14"
    "d10d2c447fce8b6703c"
)


class Clock:
    def __init__(self) -> None:
        self.t = 1_764_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(limits=False, scopes=every_scope())  # the test apps here are not Rollbot
    await server.start()
    yield server
    await server.stop()


def client(sb: SandboxServer, token: str | None = None, **kw: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token or sb.bot_token, base_url=sb.api_url, **kw)


async def error_of(coro: Any) -> str:
    with pytest.raises(SlackApiError) as err:
        await coro
    return str(err.value.response["error"])


def test_signing_reproduces_slacks_published_test_vector() -> None:
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", SLACK_VECTOR_BODY) == \
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


async def test_deliveries_are_signed_so_that_slack_sdk_verifies_them(sb: SandboxServer) -> None:
    seen: list[tuple[bytes, dict[str, str]]] = []

    async def app(request: web.Request) -> web.Response:
        seen.append((await request.read(), dict(request.headers)))
        return web.Response(text="")

    runner = await _serve(app)
    sb.app_url = f"http://127.0.0.1:{runner[1]}/"
    await sb.command("U500OC01", "C0GENERAL", "/rollback", "help")
    await runner[0].cleanup()
    body, headers = seen[0]
    assert SignatureVerifier(sb.signing_secret).is_valid_request(body, headers)
    assert not SignatureVerifier("wrong-secret").is_valid_request(body, headers)


async def _serve(handler: Any) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    return await start_site(app)


async def test_auth_test_has_the_bot_ids_and_scopes_header(sb: SandboxServer) -> None:
    response = await client(sb).auth_test()
    assert response["user_id"] == "U0ROLLBOT" and response["bot_id"] and response["team_id"] == "T0ROLLBOT"
    assert "chat:write" in response.headers["x-oauth-scopes"]
    assert await error_of(client(sb, "xoxb-forged").auth_test()) == "invalid_auth"
    assert await error_of(AsyncWebClient(base_url=sb.api_url).api_call("auth.test")) == "not_authed"


async def test_each_error_code_comes_from_the_call_that_should_produce_it(sb: SandboxServer) -> None:
    c = client(sb)
    created = await c.conversations_create(name="inc-probe")
    cid = created["channel"]["id"]
    assert created["channel"]["name"] == "inc-probe" and created["channel"]["is_member"]
    posted = await c.chat_postMessage(channel=cid, text="hello")
    expectations = {
        "name_taken": c.conversations_create(name="inc-probe"),
        "invalid_name_specials": c.conversations_create(name="Bad Name!"),
        "invalid_name_maxlength": c.conversations_create(name="x" * 81),
        "channel_not_found": c.chat_postMessage(channel="C_NOPE", text="x"),
        "not_in_channel": c.conversations_setTopic(channel="C0GENERAL", topic="x"),
        "cant_invite_self": c.conversations_invite(channel=cid, users="U0ROLLBOT"),
        "user_not_found": c.conversations_invite(channel=cid, users="U_GHOST"),
        "users_not_found": c.users_lookupByEmail(email="nobody@nowhere.test"),
        "message_not_found": c.chat_update(channel=cid, ts="1.000001", text="x"),
        "invalid_blocks": c.chat_postMessage(channel=cid, text="x", blocks=[{"type": "section"}]),
        "msg_too_long": c.chat_postMessage(channel=cid, text="x" * 40001),
        "invalid_arguments": c.views_open(trigger_id="1.2.3", view={"type": "modal", "title": {
            "type": "plain_text", "text": "x" * 25}, "blocks": []}),
        "invalid_trigger_id": c.views_open(trigger_id="1.2.3", view={"type": "modal", "title": {
            "type": "plain_text", "text": "ok"}, "blocks": []}),
    }
    for code, call in expectations.items():
        assert await error_of(call) == code, code
    await c.conversations_invite(channel=cid, users="U100TL01")
    assert await error_of(c.conversations_invite(channel=cid, users="U100TL01")) == "already_in_channel"
    await c.conversations_archive(channel=cid)
    assert await error_of(c.chat_postMessage(channel=cid, text="x")) == "is_archived"
    assert posted["message"]["text"] == "hello"


async def test_bookmarks_answer_with_slacks_bookmark_object_and_errors(sb: SandboxServer) -> None:
    c = client(sb)
    cid = (await c.conversations_create(name="inc-marks"))["channel"]["id"]
    added = (await c.bookmarks_add(channel_id=cid, title="Alert source", type="link",
                                   link="http://prometheus:9090/graph"))["bookmark"]
    assert added["id"].startswith("Bk") and added["channel_id"] == cid and added["type"] == "link"
    assert {"rank", "date_created", "date_updated", "last_updated_by_user_id", "emoji"} <= set(added)
    edited = (await c.bookmarks_edit(channel_id=cid, bookmark_id=added["id"], link="https://status.example.com",
                                     title="Status page"))["bookmark"]
    assert (edited["id"], edited["title"], edited["link"]) == (added["id"], "Status page", "https://status.example.com")
    expectations = {
        "invalid_bookmark_type": c.bookmarks_add(channel_id=cid, title="x", type="message", link="https://a.b"),
        "invalid_link": c.bookmarks_add(channel_id=cid, title="x", type="link", link="ftp://a.b"),
        "invalid_arguments": c.bookmarks_add(channel_id=cid, title="", type="link", link="https://a.b"),
        "not_found": c.bookmarks_edit(channel_id=cid, bookmark_id="Bk_NOPE", title="x"),
        "channel_not_found": c.bookmarks_add(channel_id="C_NOPE", title="x", type="link", link="https://a.b"),
        "not_in_channel": c.bookmarks_add(channel_id="C0GENERAL", title="x", type="link", link="https://a.b"),
    }
    for code, call in expectations.items():
        assert await error_of(call) == code, code
    [mark] = sb.ws.channels[cid].bookmarks
    assert mark["title"] == "Status page"


async def test_block_kit_limits_are_enforced_with_the_problem_named(sb: SandboxServer) -> None:
    c = client(sb)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}
    too_many_options = {"type": "actions", "elements": [{"type": "checkboxes", "action_id": "a", "options": [
        {"text": {"type": "plain_text", "text": str(i)}, "value": str(i)} for i in range(11)]}]}
    cases = [
        [section] * 51,
        [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3001}}],
        [too_many_options],
        [{"type": "actions", "elements": [{"type": "button", "action_id": "x" * 256, "text": {
            "type": "plain_text", "text": "b"}}]}],
        [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    ]
    for blocks in cases:
        with pytest.raises(SlackApiError) as err:
            await c.chat_postMessage(channel="U100TL01", text="x", blocks=blocks)
        assert err.value.response["error"] == "invalid_blocks" and err.value.response["errors"]


async def test_rate_limit_answers_429_with_retry_after_and_slack_sdk_recovers() -> None:
    clock = Clock()
    sb = SandboxServer(limits=True, clock=clock)
    await sb.start()
    try:
        c = client(sb)
        statuses = []
        for _ in range(12):
            try:
                await c.chat_postMessage(channel="U100TL01", text="burst")
                statuses.append(200)
            except SlackApiError as exc:
                statuses.append(exc.response.status_code)
                assert int(exc.response.headers["Retry-After"]) >= 1
                assert exc.response["error"] == "ratelimited"
        assert 429 in statuses and statuses[0] == 200

        handler = AsyncRateLimitErrorRetryHandler(max_retry_count=2)

        async def later() -> None:  # the sandbox's clock moves on while the SDK waits Retry-After
            await asyncio.sleep(0.3)
            clock.t += 60

        mover = asyncio.ensure_future(later())
        retrying = client(sb, retry_handlers=[handler])
        response = await retrying.chat_postMessage(channel="U100TL01", text="after the wait")
        await mover
        assert response["ok"]
    finally:
        await sb.stop()


async def test_faults_latency_failures_and_fail_next(sb: SandboxServer) -> None:
    c = client(sb)
    sb.faults.fail_next("chat.postMessage", 2, status=500)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            await c.chat_postMessage(channel="U100TL01", text="x")
        assert err.value.response.status_code == 500
    assert (await c.chat_postMessage(channel="U100TL01", text="x"))["ok"]
    sb.faults.configure(fail_share=1.0, fail_statuses=[429])
    with pytest.raises(SlackApiError) as err:
        await c.auth_test()
    assert err.value.response.status_code == 429
    sb.faults.configure(fail_share=0, delay_s=0.05)
    started = asyncio.get_running_loop().time()
    await c.auth_test()
    assert asyncio.get_running_loop().time() - started >= 0.05


async def test_state_lists_users_channels_dms_and_calls(sb: SandboxServer) -> None:
    c = client(sb)
    await c.chat_postMessage(channel="U700PM01", text="dm")
    state = sb.state()
    assert any(u["id"] == "U0ROLLBOT" and u["is_bot"] for u in state["users"])
    assert {"C0GENERAL", "C0DEPLOYS"} <= {ch["id"] for ch in state["channels"]}
    assert state["dms"][0]["user"] == "U700PM01" and state["dms"][0]["messages"][0]["text"] == "dm"
    assert state["calls"][-1]["method"] == "chat.postMessage" and "token" not in state["calls"][-1]["args"]
    assert "S100DEVOPS" in next(u for u in state["users"] if u["id"] == "U200DO01")["groups"]


async def test_trigger_ids_expire_after_three_seconds_and_response_urls_after_five_uses() -> None:
    clock = Clock()
    sb = SandboxServer(limits=False, clock=clock)
    await sb.start()
    answers: list[dict[str, Any]] = []

    async def app(request: web.Request) -> web.Response:
        form = dict(await request.post())
        answers.append(form)
        return web.Response(text="")

    runner, port = await _serve(app)
    sb.app_url = f"http://127.0.0.1:{port}/"
    try:
        await sb.command("U500OC01", "C0GENERAL", "/rollback", "")
        trigger, response_url = answers[0]["trigger_id"], answers[0]["response_url"]
        clock.t += 3.5
        view = {"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []}
        assert await error_of(client(sb).views_open(trigger_id=trigger, view=view)) == "expired_trigger_id"
        import aiohttp

        async with aiohttp.ClientSession() as http:
            statuses = []
            for i in range(6):
                async with http.post(response_url, json={"text": f"r{i}"}) as r:
                    statuses.append(r.status)
        assert statuses[:5] == [200] * 5 and statuses[5] != 200
        assert len(sb.ws.ephemerals["U500OC01"]) == 5
    finally:
        await runner.cleanup()
        await sb.stop()


async def test_events_are_retried_with_slacks_headers_when_the_app_is_slow(sb: SandboxServer) -> None:
    seen: list[dict[str, str]] = []

    async def slow_app(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        if len(seen) == 1:
            await asyncio.sleep(3.2)
        return web.Response(text="")

    runner, port = await _serve(slow_app)
    sb.app_url = f"http://127.0.0.1:{port}/"
    try:
        result = await sb.event({"type": "app_mention", "user": "U100TL01", "text": "<@U0ROLLBOT> hi",
                                 "channel": "C0GENERAL", "ts": "1.000001"})
    finally:
        await runner.cleanup()
    assert result["retries"] == 1 and result["status"] == 200
    assert seen[1]["X-Slack-Retry-Num"] == "1" and seen[1]["X-Slack-Retry-Reason"] == "http_timeout"
    assert "X-Slack-Retry-Num" not in seen[0]


async def test_clicks_and_view_submissions_look_like_slacks(sb: SandboxServer) -> None:
    received: list[dict[str, Any]] = []
    c = client(sb)

    async def app(request: web.Request) -> web.Response:
        payload = json.loads((await request.post())["payload"])
        received.append(payload)
        if payload["type"] == "view_submission":
            name = payload["view"]["state"]["values"]["reason"]["reason"]["value"]
            if not name:
                return web.json_response({"response_action": "errors", "errors": {"reason": "say why"}})
        return web.Response(text="")

    runner, port = await _serve(app)
    sb.app_url = f"http://127.0.0.1:{port}/"
    try:
        posted = await c.chat_postMessage(channel="U100TL01", text="t", blocks=[
            {"type": "actions", "block_id": "b1", "elements": [
                {"type": "checkboxes", "action_id": "tick", "options": [
                    {"text": {"type": "plain_text", "text": "one"}, "value": "1"},
                    {"text": {"type": "plain_text", "text": "two"}, "value": "2"}],
                 "initial_options": [{"text": {"type": "plain_text", "text": "one"}, "value": "1"}]},
                {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}, "value": "v"}]}])
        await sb.click("U100TL01", posted["channel"], posted["ts"], text="two")
        await sb.click("U100TL01", posted["channel"], posted["ts"], text="Go")
        tick, go = received
        assert tick["type"] == "block_actions" and tick["container"]["message_ts"] == posted["ts"]
        assert [o["value"] for o in tick["actions"][0]["selected_options"]] == ["1", "2"]
        assert tick["state"]["values"]["b1"]["tick"]["selected_options"][1]["value"] == "2"
        assert go["actions"][0] == go["actions"][0] | {"action_id": "go", "value": "v", "type": "button"}
        assert go["trigger_id"] and go["response_url"] and go["user"]["id"] == "U100TL01"
        opened = await c.views_open(trigger_id=go["trigger_id"], view={
            "type": "modal", "callback_id": "skip", "title": {"type": "plain_text", "text": "Skip"},
            "submit": {"type": "plain_text", "text": "Skip"}, "blocks": [
                {"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason"},
                 "element": {"type": "plain_text_input", "action_id": "reason"}}]})
        view_id = opened["view"]["id"]
        refused = await sb.submit("U100TL01", view_id, {"reason": ""})
        assert refused["body"]["response_action"] == "errors"
        assert sb.ws.views["U100TL01"][0]["errors"] == {"reason": "say why"}
        accepted = await sb.submit("U100TL01", view_id, {"reason": "not needed"})
        assert accepted["status"] == 200 and sb.ws.views["U100TL01"] == []
        assert received[-1]["view"]["callback_id"] == "skip"
    finally:
        await runner.cleanup()


async def test_file_upload_flow_of_files_upload_v2(sb: SandboxServer) -> None:
    c = client(sb)
    channel = (await c.conversations_create(name="inc-files"))["channel"]["id"]
    response = await c.files_upload_v2(channel=channel, content="# Report\n", filename="report.md", title="Report")
    file_id = response["file"]["id"]
    assert sb.file_content(file_id) == b"# Report\n"
    assert sb.state()["channels"][-1]["messages"][-1]["files"] == [{"id": file_id}]


async def test_a_bolt_app_answers_a_slash_command_and_a_button_click_over_http(sb: SandboxServer) -> None:
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(client=client(sb), signing_secret=sb.signing_secret)
    clicked: list[str] = []

    @app.command("/hello")
    async def hello(ack: Any, say: Any, command: dict[str, Any]) -> None:
        await ack("hi there")
        await say(text="pick one", blocks=[{"type": "actions", "elements": [
            {"type": "button", "action_id": "pick", "text": {"type": "plain_text", "text": "Pick"}, "value": "42"}]}])

    @app.action("pick")
    async def pick(ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        clicked.append(body["actions"][0]["value"])
        await respond(replace_original=True, text=f"picked by <@{body['user']['id']}>")

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    runner, port = await _serve(endpoint)
    sb.app_url = f"http://127.0.0.1:{port}/slack/events"
    try:
        await client(sb).conversations_join(channel="C0GENERAL")
        answer = await sb.command("U100TL01", "C0GENERAL", "/hello", "")
        assert answer["status"] == 200
        for _ in range(50):
            messages = [m for m in sb.state()["channels"][0]["messages"] if m["text"] == "pick one"]
            if messages:
                break
            await asyncio.sleep(0.02)
        assert sb.ws.ephemerals["U100TL01"][0]["text"] == "hi there"
        clicked_answer = await sb.click("U100TL01", "C0GENERAL", messages[0]["ts"], text="Pick")
        assert clicked_answer["status"] == 200
        for _ in range(50):
            if clicked and sb.ws.channels["C0GENERAL"].find(messages[0]["ts"]).text.startswith("picked"):
                break
            await asyncio.sleep(0.02)
        assert clicked == ["42"]
        assert sb.ws.channels["C0GENERAL"].find(messages[0]["ts"]).text == "picked by <@U100TL01>"
    finally:
        await runner.cleanup()


async def test_socket_mode_delivers_envelopes_and_matches_acks(sb: SandboxServer) -> None:
    from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
    from slack_bolt.async_app import AsyncApp

    assert await error_of(client(sb).api_call("apps.connections.open")) == "not_allowed_token_type"
    app = AsyncApp(client=client(sb), signing_secret=sb.signing_secret)
    clicks: list[str] = []

    @app.command("/rollback")
    async def command(ack: Any, command: dict[str, Any]) -> None:
        await ack(text=f"over the socket: {command['text']}")

    @app.action("go")
    async def go(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        clicks.append(body["user"]["id"])

    handler = AsyncSocketModeHandler(app, sb.app_token, web_client=client(sb))
    await handler.connect_async()
    try:
        for _ in range(100):
            if sb.sockets.connected:
                break
            await asyncio.sleep(0.02)
        answer = await sb.command("U100TL01", "C0GENERAL", "/rollback", "status")
        assert answer["via"] == "socket_mode" and answer["status"] == 200
        assert answer["body"]["text"] == "over the socket: status"
        assert sb.ws.ephemerals["U100TL01"][-1]["text"] == "over the socket: status"
        posted = await client(sb).chat_postMessage(channel="U100TL01", text="t", blocks=[{"type": "actions", "elements": [
            {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}]}])
        clicked = await sb.click("U100TL01", posted["channel"], posted["ts"], action_id="go")
        assert clicked["status"] == 200 and clicked["envelope_id"]
        for _ in range(50):
            if clicks:
                break
            await asyncio.sleep(0.02)
        assert clicks == ["U100TL01"]
    finally:
        await handler.close_async()


async def test_message_metadata_is_kept_and_returned_only_with_include_all_metadata(sb: SandboxServer) -> None:
    """As Slack: chat.postMessage keeps `metadata`; conversations.history and .replies return it only when asked
    (include_all_metadata), and only in a channel the bot is in (a public channel it posts to from outside, with
    chat:write.public, is not_in_channel); metadata without event_type / event_payload is invalid_metadata_format."""
    web_client = client(sb)
    channel = (await web_client.conversations_create(name="metadata-test"))["channel"]["id"]
    meta = {"event_type": "rollbot_message", "event_payload": {"key": "inc-1:header"}}
    root = await web_client.chat_postMessage(channel=channel, text="root", metadata=meta)
    await web_client.chat_postMessage(channel=channel, text="reply", thread_ts=root["ts"],
                                      metadata={**meta, "event_payload": {"key": "inc-1:reply"}})
    plain = await web_client.conversations_history(channel=channel)
    assert all("metadata" not in m for m in plain["messages"])
    full = await web_client.conversations_history(channel=channel, include_all_metadata=True)
    assert next(m for m in full["messages"] if m["ts"] == root["ts"])["metadata"] == meta
    thread = await web_client.conversations_replies(channel=channel, ts=root["ts"], include_all_metadata=True)
    assert [m["metadata"]["event_payload"]["key"] for m in thread["messages"]] == ["inc-1:header", "inc-1:reply"]
    outside = await web_client.chat_postMessage(channel="C0GENERAL", text="from outside")
    assert await error_of(web_client.conversations_history(channel="C0GENERAL")) == "not_in_channel"
    assert await error_of(web_client.conversations_replies(channel="C0GENERAL", ts=outside["ts"])) == "not_in_channel"
    assert await error_of(web_client.chat_postMessage(channel=channel, text="x",
                                                      metadata={"event_type": "x"})) == "invalid_metadata_format"
