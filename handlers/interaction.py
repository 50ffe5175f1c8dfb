"""What every interactive handler needs from a Slack payload: who, where, and which incident."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from bot.store.models import Incident

if TYPE_CHECKING:
    from bot.app import Rollbot


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


async def incident_for_message(bot: Rollbot, click: Click, key: str) -> Incident | None:
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


async def refuse(bot: Rollbot, click: Click, text: str) -> None:
    """Tell only the person who clicked. The response_url reaches them even when they are not a channel member
    (an ephemeral would fail with user_not_in_channel)."""
    if click.response_url:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(click.response_url, json={
                    "response_type": "ephemeral", "replace_original": False, "text": f":no_entry: {text}"})
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
    if click.channel:
        await bot.svc.slack.ephemeral(click.channel, click.user, f":no_entry: {text}")
