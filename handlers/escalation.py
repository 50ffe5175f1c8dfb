"""Acknowledging pages, the page's link button, and `/rollback contacts`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.escalation.contacts_view import contacts_text
from bot.escalation.views import ACK
from handlers.command_parser import Command
from handlers.commands import Ack, add_subcommand
from handlers.interaction import click_from, refuse

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    @bot.bolt.action(ACK)
    async def acknowledge(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)
        if not click.value.isdigit():
            await refuse(bot, click, "That is not a page.")
            return
        answer = await bot.escalation.acknowledge(int(click.value), click.user, click.channel, click.message_ts)
        if not answer.startswith("Acknowledged"):
            await refuse(bot, click, answer)

    @bot.bolt.action("page_join")
    async def join(ack: Any) -> None:
        await ack()  # a link button: Slack opens the URL; the click is only acknowledged

    async def contacts(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
        roles = bot.svc.roles
        tiers = {r.id: (await roles.tier(r.id, "primary"), await roles.tier(r.id, "secondary"))
                 for r in bot.svc.runbook.roles}
        await ack(response_type="ephemeral", text=contacts_text(bot.svc.runbook, tiers))

    add_subcommand("contacts", contacts)
