"""The Declare button of a triage post: opens the declare form prefilled from the stored alert."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.alerts.matching import SEVERITY_RANK
from bot.alerts.triage_view import DECLARE_ACTION
from bot.incidents.declare_view import Prefill, declare_modal
from bot.store.models import ReceivedAlert
from handlers.interaction import click_from, refuse, sealed

if TYPE_CHECKING:
    from handlers.app import App


def prefill_for(bot: App, row: ReceivedAlert) -> Prefill:
    """The alert's severity picks the level; its name, summary and labels become the description."""
    levels = [lv.id for lv in bot.svc.runbook.levels]
    labels = dict((row.payload or {}).get("labels") or {})
    rank = SEVERITY_RANK.get(str(labels.get("severity", "")).lower())
    level = levels[min(rank, len(levels) - 1)] if rank is not None else None
    summary = (row.payload or {}).get("summary") or ""
    pairs = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return Prefill(trigger_id=row.trigger_id, level=level,
                   description=f"{row.source} alert {row.name}: {summary}\n{pairs}".strip())


def register(bot: App) -> None:
    @bot.bolt.action(DECLARE_ACTION)
    async def declare(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)
        row = None
        if click.value.isdigit():
            async with bot.db.session() as session:
                row = await session.get(ReceivedAlert, int(click.value))
        if row is None:
            await refuse(bot, click, "That alert is no longer stored.")
            return
        await bot.svc.slack.client.views_open(trigger_id=click.trigger_id, view=sealed(bot, declare_modal(
            bot.svc.runbook, click.channel or "", prefill_for(bot, row)), click.user))
