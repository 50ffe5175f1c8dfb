"""The sandbox holds the installed app's scopes (manifest.yml's by default) and answers a method whose scope was
not granted as Slack does: `missing_scope`, naming the scopes the method accepts and those the token has."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox import scopes
from bot.sandbox.server import SandboxServer
from bot.slack.scopes import bot_scopes


@pytest.fixture
async def sb() -> AsyncIterator[SandboxServer]:
    server = SandboxServer(limits=False)
    await server.start()
    yield server
    await server.stop()


def client(sb: SandboxServer) -> AsyncWebClient:
    return AsyncWebClient(token=sb.bot_token, base_url=sb.api_url)


def test_the_sandbox_grants_the_manifests_scopes_by_default() -> None:
    granted = SandboxServer(limits=False).scopes
    assert granted == scopes.manifest_scopes() and sorted(granted) == bot_scopes()


def test_every_method_the_sandbox_answers_has_its_accepted_scopes_listed() -> None:
    assert set(SandboxServer(limits=False).methods) <= set(scopes.ACCEPTED)


async def test_a_method_whose_scope_is_missing_answers_missing_scope_as_slack_does(sb: SandboxServer) -> None:
    c = client(sb)
    with pytest.raises(SlackApiError) as caught:
        await c.reactions_add(channel="C0GENERAL", timestamp="1.0", name="eyes")  # reactions:write: not asked for
    body = caught.value.response.data
    assert caught.value.response.status_code == 200
    assert body == {"ok": False, "error": "missing_scope", "needed": "reactions:write",
                    "provided": ",".join(sorted(scopes.manifest_scopes()))}
    assert caught.value.response.headers["x-oauth-scopes"] == body["provided"]

    sb.scopes = scopes.manifest_scopes() - {"chat:write"}
    with pytest.raises(SlackApiError) as caught:
        await c.chat_postMessage(channel="C0GENERAL", text="hello")
    assert caught.value.response["needed"] == "chat:write"
    assert "chat:write" not in caught.value.response["provided"].split(",")
    assert not sb.ws.channels["C0GENERAL"].messages, "refused calls change nothing"

    sb.scopes = scopes.manifest_scopes() - {"channels:manage"}
    with pytest.raises(SlackApiError) as caught:
        await c.conversations_create(name="inc-test")
    assert caught.value.response["needed"] == "channels:manage,groups:write,im:write,mpim:write"


async def test_methods_needing_no_scope_and_granted_ones_still_answer(sb: SandboxServer) -> None:
    sb.scopes = set()
    c = client(sb)
    assert (await c.auth_test())["ok"]  # auth.test needs no scope
    sb.scopes = {"channels:manage"}
    created = await c.conversations_create(name="inc-granted")
    assert created["channel"]["name"] == "inc-granted"


async def test_posting_to_a_public_channel_the_bot_is_not_in_needs_chat_write_public(sb: SandboxServer) -> None:
    sb.scopes = sb.scopes - {"chat:write.public"}
    c = client(sb)
    with pytest.raises(SlackApiError) as caught:
        await c.chat_postMessage(channel="C0GENERAL", text="from outside")
    assert caught.value.response["error"] == "not_in_channel"
    sb.scopes = sb.scopes | {"chat:write.public"}
    assert (await c.chat_postMessage(channel="C0GENERAL", text="from outside"))["ok"]
