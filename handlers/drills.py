"""`/rollback drill [scenario]`: a drill incident in a drill- channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handlers.command_parser import Command
from handlers.commands import Ack, add_subcommand

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    async def drill(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
        scenario = bot.svc.runbook.scenario(cmd.scenario).title if cmd.scenario else "the generic procedure"
        await ack(response_type="ephemeral", text=f":test_tube: Starting a drill of {scenario}…")
        bot.spawn(bot.drills.start(command["user_id"], cmd.scenario, level=cmd.level,
                                   response_url=command.get("response_url")))

    add_subcommand("drill", drill)
