"""What every interactive handler needs from a Slack payload: who, where, and which incident."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from slack_sdk.models.views import View

from bot.slack.blocks import truncate
from bot.store.models import Incident

if TYPE_CHECKING:
    from handlers.app import App


@dataclass(frozen=True)
class Click:
    user: str
    channel: str | None
    message_ts: str | None
    trigger_id: str | None
    action: dict[str, Any]
    response_url: str | None = None

    @property
    def value(self) -> str:
        return str(self.action.get("value", ""))


def click_from(body: dict[str, Any], action: dict[str, Any]) -> Click:
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    return Click(user=body["user"]["id"], channel=channel, message_ts=container.get("message_ts"),
                 trigger_id=body.get("trigger_id"), action=action, response_url=body.get("response_url"))


def _seal_key(bot: App) -> bytes:
    secret = bot.settings.slack_signing_secret
    return hashlib.sha256(b"rollbot-view:" + (secret.get_secret_value() if secret else "").encode()).digest()


def _mac(bot: App, callback_id: str, user: str, metadata: str) -> str:
    message = json.dumps([callback_id, user, metadata]).encode()
    return hmac.new(_seal_key(bot), message, hashlib.sha256).hexdigest()[:32]


def sealed(bot: App, view: View, user: str) -> View:
    """Bind a modal to the person it is opened for: its private metadata carries a MAC of (callback, user, data),
    so a submission by someone else, of another view, or with edited data is refused by `unsealed`."""
    metadata = view.private_metadata or ""
    view.private_metadata = json.dumps({"d": metadata, "mac": _mac(bot, view.callback_id or "", user, metadata)})
    return view


def unsealed(bot: App, body: dict[str, Any], view: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON data `sealed` put in a submitted view; None when it was not sealed for this user and view."""
    user = str((body.get("user") or {}).get("id", ""))
    try:
        outer = json.loads(view.get("private_metadata") or "")
        metadata, mac = str(outer["d"]), str(outer["mac"])
        data = json.loads(metadata)
    except (ValueError, TypeError, KeyError):
        return None
    expected = _mac(bot, str(view.get("callback_id", "")), user, metadata)
    return data if hmac.compare_digest(mac, expected) and isinstance(data, dict) else None


async def incident_for_message(bot: App, click: Click, key: str) -> Incident | None:
    """The incident whose `key` message was clicked, or None when the click does not come from it
    (another channel, another incident's message, or a forged payload)."""
    if not click.channel or not click.message_ts:
        return None
    incident = await bot.incidents.by_channel(click.channel)
    if incident is None:
        return None
    ref = await bot.svc.slack.message_ref(incident.id, key)
    if ref is None or ref.ts != click.message_ts or ref.channel != click.channel:
        return None
    return incident


async def refuse(bot: App, click: Click, text: str) -> None:
    """Tell only the person who clicked why not."""
    await tell(bot, click, f":no_entry: {text}")


async def tell(bot: App, click: Click, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
    """Tell only the person who clicked. The response_url reaches them even when they are not a channel member
    (an ephemeral would fail with user_not_in_channel)."""
    if click.response_url:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(click.response_url, json={
                    "response_type": "ephemeral", "replace_original": False, "text": text,
                    **({"blocks": blocks} if blocks else {})})
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
    if click.channel:
        await bot.svc.slack.ephemeral(click.channel, click.user, text, blocks)


# How long a form submission may wait for the engine before it is acknowledged anyway: well inside Slack's 3 s,
# so a loaded machine closes the form late rather than showing the person "We had some trouble connecting".
SUBMIT_WITHIN_ACK_SECONDS = 1.5


async def submit_within_ack(bot: App, ack: Callable[..., Awaitable[Any]], user: str,
                            work: Coroutine[Any, Any, str | None], block_id: str) -> None:
    """Run a form's work and answer Slack with its outcome: `work` returns None when it succeeded or the text of
    why it was refused, shown on the form (`block_id`). When the work outlasts the budget the form is closed at
    once and the outcome, if a refusal, reaches the person by DM instead."""
    task = bot.spawn(work)
    done, _ = await asyncio.wait([task], timeout=SUBMIT_WITHIN_ACK_SECONDS)
    if done:
        refusal = task.result()
        if refusal:
            await ack(response_action="errors", errors={block_id: truncate(refusal, 150)})
        else:
            await ack()
        return
    await ack()

    async def tell_later() -> None:
        refusal = await task
        if refusal:
            await bot.svc.slack.dm(user, f":no_entry: {refusal}")

    bot.spawn(tell_later())
