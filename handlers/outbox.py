"""The Retry button on parked work: bound to its notice message; the engine authorizes and acts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.incidents.parked_view import RETRY_ACTION
from handlers.interaction import click_from, incident_for_message, refuse

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    @bot.bolt.action(RETRY_ACTION)
    async def retry(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)

        async def work() -> None:
            try:
                row_id = int(click.action.get("value") or "")
            except ValueError:
                return
            incident = await incident_for_message(bot, click, f"parked:{row_id}")
            if incident is None:
                await refuse(bot, click, "That button is not from this incident's failure notice.")
                return
            answer = await bot.outbox.retry(incident.id, row_id, click.user)
            if not answer.startswith("Retried"):
                await refuse(bot, click, answer)

        bot.spawn(work())
