"""The two buttons of the "every alert resolved" thread post: move to validation, resolve (the incident lead's)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.alerts.notes import message_key
from bot.alerts.views import RESOLVE_ACTION, VALIDATE_ACTION
from handlers.interaction import click_from, incident_for_message, refuse

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    async def clicked(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)

        async def work() -> None:
            incident = await incident_for_message(bot, click, message_key(int(click.value))) \
                if click.value.isdigit() else None
            if incident is None:
                await refuse(bot, click, "That button does not belong to this incident's message.")
                return
            if action.get("action_id") == VALIDATE_ACTION:
                answer = await bot.alert_notes.move_to_validation(incident.id, click.user)
                done = answer.startswith("Moved")
            else:
                answer = await bot.alert_notes.resolve(incident.id, click.user)
                done = answer == "Resolved."
            if done and click.channel:
                await bot.svc.slack.ephemeral(click.channel, click.user, f":white_check_mark: {answer}")
            elif not done:
                await refuse(bot, click, answer)

        bot.spawn(work())

    bot.bolt.action(VALIDATE_ACTION)(clicked)
    bot.bolt.action(RESOLVE_ACTION)(clicked)
