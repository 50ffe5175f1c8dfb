"""`/rollback`: parse, ack at once, then hand the work to the engine after the ack."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from bot.core.authz import RULES, interaction_key
from bot.incidents.declare_view import CALLBACK_ID, NO_SCENARIO, declare_modal, submitted_values
from bot.incidents.service import Declaration
from bot.slack.blocks import escape
from handlers.command_parser import USAGE, VERSION_RE, Command, CommandError, parse
from handlers.interaction import sealed, unsealed

if TYPE_CHECKING:
    from handlers.app import App

Ack = Callable[..., Awaitable[None]]
Subcommand = Callable[["App", Command, dict[str, Any], Ack], Awaitable[None]]


def register(bot: App) -> None:
    @bot.bolt.view(CALLBACK_ID)
    async def declare_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = unsealed(bot, body, view)
        if meta is None or not isinstance(meta.get("channel"), str):
            await ack(response_action="errors", errors={"scenario": "This form was not opened for you here."})
            return
        values = submitted_values(((view.get("state") or {}).get("values")) or {})
        version = values.get("version", "").strip() or None
        if version and not VERSION_RE.match(version):
            await ack(response_action="errors", errors={"version": "Not a version: expected e.g. v2.3.1"})
            return
        scenario = values.get("scenario") if values.get("scenario") != NO_SCENARIO else None
        runbook = bot.svc.runbook
        if (scenario and scenario not in {s.id for s in runbook.scenarios}) or \
                values.get("level") not in {lv.id for lv in runbook.levels} or \
                (values.get("trigger") and values["trigger"] not in {t.id for t in runbook.triggers}):
            await ack(response_action="errors", errors={"scenario": "Pick from the lists."})
            return
        await ack()
        cmd = Command(name="start", scenario=scenario, level=values.get("level"), version=version,
                      text=values.get("description", "").strip())
        declaration = declaration_for(bot, cmd, body["user"]["id"], meta["channel"] or None)
        if values.get("trigger"):
            trigger = runbook.trigger(values["trigger"])
            declaration = replace(declaration, trigger_id=trigger.id,
                                  title=declaration.title if cmd.text else trigger.title)

        async def work() -> None:
            incident, _ = await bot.incidents.declare(declaration)
            await bot.warroom.open(incident.id)

        bot.spawn(work())

    @bot.bolt.command("/rollback")
    async def rollback(ack: Ack, command: dict[str, Any]) -> None:
        try:
            parsed = parse(command.get("text", ""), bot.svc.runbook)
        except CommandError as exc:
            await ack(response_type="ephemeral", text=f":x: {exc}\n\n{USAGE}")
            return
        handler = SUBCOMMANDS.get(parsed.name)
        if handler is None or interaction_key("command", parsed.name) not in RULES:  # bot/core/authz.py
            await ack(response_type="ephemeral", text=f"`{parsed.name}` is not available in this deployment.")
            return
        await handler(bot, parsed, command, ack)


async def _modal(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    incident = await bot.incidents.by_channel(command.get("channel_id", ""))
    if incident is not None and incident.status == "open":  # in an incident's channel: that incident, not a new one
        from bot.incidents.status_view import incident_menu_text

        snap = await bot.svc.snapshot(incident.id, with_holders=False)
        await ack(response_type="ephemeral", text=incident_menu_text(snap))
        return
    await ack()
    await bot.svc.slack.client.views_open(trigger_id=command["trigger_id"], view=sealed(
        bot, declare_modal(bot.svc.runbook, command.get("channel_id", "")), command["user_id"]))


async def _help(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    await ack(response_type="ephemeral", text=USAGE)


def declaration_for(bot: App, cmd: Command, user: str, channel: str | None, drill: bool = False) -> Declaration:
    runbook = bot.svc.runbook
    scenario = runbook.scenario(cmd.scenario) if cmd.scenario else None
    trigger = runbook.trigger(scenario.triggers[0]) if scenario and scenario.triggers else None
    level = cmd.level or (trigger.level if trigger else runbook.levels[0].id)
    title = cmd.text or (scenario.title if scenario else "Rollback declared by hand")
    return Declaration(level=level, declared_by=user, title=title[:200], scenario_id=cmd.scenario,
                       trigger_id=trigger.id if trigger else None, description=cmd.text, version=cmd.version,
                       origin_channel_id=channel, is_drill=drill)


async def _start(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    declaration = declaration_for(bot, cmd, command["user_id"], command.get("channel_id"))
    level = bot.svc.runbook.level(declaration.level)
    await ack(response_type="ephemeral", text=f":rotating_light: Declaring a *{level.title}* rollback incident…")

    async def work() -> None:
        incident, _ = await bot.incidents.declare(declaration)
        await bot.warroom.open(incident.id, command.get("response_url"))

    bot.spawn(work())


async def _list(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    incidents = await bot.incidents.open_incidents()
    if not incidents:
        await ack(response_type="ephemeral", text="No open rollback incidents.")
        return
    alerts = await bot.incidents.alert_counts([i.id for i in incidents[:40]])
    lines = [f"• *{i.id}* {'[DRILL] ' if i.is_drill else ''}{escape(i.title)} ({i.level}, {i.stage})"
             + alert_summary(*alerts.get(i.id, (0, 0)))
             + (f" <#{i.channel_id}>" if i.channel_id else "") for i in incidents[:40]]
    await ack(response_type="ephemeral", text="*Open rollback incidents*\n" + "\n".join(lines))


async def _status(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    from bot.incidents.status_view import status_text

    incident = await bot.incidents.by_channel(command.get("channel_id", ""))
    if incident is None:
        await ack(response_type="ephemeral", text="Run `/rollback status` in an incident channel (see `/rollback list`).")
        return
    snap = await bot.svc.snapshot(incident.id, with_holders=False)
    await ack(response_type="ephemeral", text=status_text(snap))


def add_subcommand(name: str, handler: Subcommand) -> None:
    """Feature modules add their `/rollback <name>` here from their own register(bot)."""
    SUBCOMMANDS[name] = handler


SUBCOMMANDS: dict[str, Subcommand] = {
    "modal": _modal,
    "help": _help,
    "start": _start,
    "list": _list,
    "status": _status,
}


def alert_summary(firing: int, resolved: int) -> str:
    """" · 1 of 2 alerts firing", " · all 2 alerts resolved", or nothing for an incident without alerts."""
    total = firing + resolved
    if not total:
        return ""
    plural = "s" if total != 1 else ""
    return f" · all {total} alert{plural} resolved" if not firing else f" · {firing} of {total} alert{plural} firing"
