"""The "Silence for 1 h" button on the incident header: the engine authorizes and acts; the answer goes to the clicker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.incidents.header import SILENCE_ACTION
from handlers.interaction import click_from, refuse

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    @bot.bolt.action(SILENCE_ACTION)
    async def silence(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)

        async def work() -> None:
            answer = await bot.silences.silence(click.value, click.user)
            if answer.startswith("Silenced"):
                await _tell(bot, click, answer)
            else:
                await refuse(bot, click, answer)

        bot.spawn(work())


async def _tell(bot: App, click: Any, text: str) -> None:
    if click.channel:
        await bot.svc.slack.client.chat_postEphemeral(channel=click.channel, user=click.user, text=f":mute: {text}")
