"""Comms drafts (Approve, Edit, Mark as sent), validation ticks and All confirmed, and `/rollback timeline | note |
resolve` with the "Add to incident timeline" message shortcut."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.comms.views import APPROVE, APPROVE_SENT, EDIT, EDIT_MODAL, SENT, edit_modal, parse_button_value
from bot.core import timeline
from bot.core.errors import Refused
from bot.reports.timeline_view import timeline_pages
from bot.slack.blocks import escape
from bot.steps.validation_view import CONFIRM_ALL, TICK
from handlers.command_parser import Command
from handlers.commands import Ack, add_subcommand
from handlers.interaction import (
    Click,
    click_from,
    incident_for_message,
    refuse,
    sealed,
    submit_within_ack,
    tell,
    unsealed,
)

if TYPE_CHECKING:
    from handlers.app import App


def register(bot: App) -> None:
    app = bot.bolt

    async def draft_click(ack: Any, body: dict[str, Any], action: dict[str, Any], verb: str) -> None:
        await ack()
        click = click_from(body, action)
        parsed = parse_button_value(click.value)
        try:
            draft, template = await bot.comms.find_draft(parsed[0]) if parsed else (None, None)
        except Refused:
            draft = template = None
        # Bound to the message it came from: the draft's own keyed message in its own incident's channel.
        incident = await incident_for_message(bot, click, f"comms:{template.id}") if draft and template else None
        if parsed is None or draft is None or incident is None or incident.id != draft.incident_id:
            await refuse(bot, click, "That draft does not belong to an incident here.")
            return
        draft_id, version = parsed
        try:
            if verb == "approve":
                await bot.comms.approve(draft_id, click.user, version)
            elif verb == "sent":
                await bot.comms.mark_sent(draft_id, click.user, version)
            elif verb == "approve_sent":
                await bot.comms.approve_and_send(draft_id, click.user, version)
            elif click.trigger_id:
                draft, template = await bot.comms.authorized("comms_edit", draft_id, click.user, acting=False)
                await bot.svc.slack.client.views_open(trigger_id=click.trigger_id,
                                                      view=sealed(bot, edit_modal(draft, template.title), click.user))
        except Refused as exc:
            await refuse(bot, click, str(exc))

    @app.action(APPROVE)
    async def approve(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await draft_click(ack, body, action, "approve")

    @app.action(APPROVE_SENT)
    async def approve_sent(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await draft_click(ack, body, action, "approve_sent")

    @app.action(SENT)
    async def sent(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await draft_click(ack, body, action, "sent")

    @app.action(EDIT)
    async def edit(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await draft_click(ack, body, action, "edit")

    @app.view(EDIT_MODAL)
    async def edited(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        text = (((view.get("state") or {}).get("values") or {}).get("text", {}).get("text", {}).get("value") or "")
        user = body["user"]["id"]

        async def work() -> str | None:
            try:
                meta = unsealed(bot, body, view)
                if meta is None:
                    raise ValueError("not sealed")
                await bot.comms.edit(int(meta["draft"]), user, text, str(meta["version"]))
            except Refused as exc:
                return str(exc)
            except (KeyError, ValueError, TypeError):
                return "That is not a draft."
            return None

        await submit_within_ack(bot, ack, user, work(), "text")

    async def validation_click(body: dict[str, Any], action: dict[str, Any], checklist_id: str) -> tuple[
            Click, str | None]:
        """The click, and its incident when it came from that incident's own message of the list."""
        click = click_from(body, action)
        incident = await bot.incidents.by_channel(click.channel or "")
        ref = await bot.svc.slack.message_ref(incident.id, f"validation:{checklist_id}") if incident and checklist_id \
            else None
        if incident is None or ref is None or ref.ts != click.message_ts:
            await refuse(bot, click, "That checklist does not belong to an incident here.")
            return click, None
        return click, incident.id

    @app.action(TICK)
    async def validation_tick(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        parts = str(action.get("block_id", "")).split("|")
        click, incident_id = await validation_click(body, action, parts[1] if len(parts) == 3 else "")
        if incident_id is None:
            return
        try:
            await bot.resolution.tick(incident_id, parts[1], {o["value"] for o in action.get("selected_options") or []},
                                      _chunk_values(body, action), click.user)
        except Refused as exc:
            await refuse(bot, click, str(exc))

    @app.action(CONFIRM_ALL)
    async def validation_all(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        checklist_id = str(action.get("value") or "")
        click, incident_id = await validation_click(body, action, checklist_id)
        if incident_id is None:
            return
        try:
            await bot.resolution.confirm_all(incident_id, checklist_id, click.user)
        except Refused as exc:
            await refuse(bot, click, str(exc))

    @app.shortcut("timeline_note")
    async def note_shortcut(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id", "")
        incident = await bot.incidents.by_channel(channel)
        user = body["user"]["id"]
        if incident is None:
            await bot.svc.slack.ephemeral(channel, user, "Use this on a message in an incident channel.")
            return
        text = (body.get("message") or {}).get("text", "")[:1000]
        await bot.incidents.note(incident.id, "note", f"Note from a message: {escape(text)}", actor=user)
        await bot.svc.slack.ephemeral(channel, user, "Added to the incident timeline.")

    async def show_timeline(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
        incident = await bot.incidents.by_channel(command.get("channel_id", ""))
        if incident is None:
            await ack(response_type="ephemeral", text="Run `/rollback timeline` in an incident channel.")
            return
        await ack()
        async with bot.db.session() as session:
            events = await timeline.events(session, incident.id)
        for blocks in timeline_pages(events, incident.declared_at, incident.title):
            if cmd.text == "post":  # asked for: the channel sees it
                await bot.svc.slack.call("chat.postMessage", channel=incident.channel_id, text="Incident timeline",
                                         blocks=[b.to_dict() for b in blocks])
            else:  # by default only the person who asked, through the response_url: they may not be a member
                asker = Click(user=command["user_id"], channel=incident.channel_id, message_ts=None, trigger_id=None,
                              action={}, response_url=command.get("response_url"))
                await tell(bot, asker, "Incident timeline", [b.to_dict() for b in blocks])

    async def note(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
        incident = await bot.incidents.by_channel(command.get("channel_id", ""))
        if incident is None:
            await ack(response_type="ephemeral", text="Run `/rollback note` in an incident channel.")
            return
        await bot.incidents.note(incident.id, "note", escape(cmd.text[:1000]), actor=command["user_id"])
        await ack(response_type="ephemeral", text="Added to the incident timeline.")

    async def resolve(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
        incident = await bot.incidents.by_channel(command.get("channel_id", ""))
        if incident is None:
            await ack(response_type="ephemeral", text="Run `/rollback resolve` in the incident channel.")
            return
        try:
            await bot.resolution.check_may_resolve(incident.id, command["user_id"], cmd.override)
        except Refused as exc:
            await ack(response_type="ephemeral", text=f":no_entry: {exc}")
            return
        await ack(response_type="ephemeral", text="Resolving…")
        bot.spawn(bot.resolution.resolve(incident.id, command["user_id"], cmd.override))

    add_subcommand("timeline", show_timeline)
    add_subcommand("note", note)
    add_subcommand("resolve", resolve)


def _chunk_values(body: dict[str, Any], action: dict[str, Any]) -> set[str]:
    """The option values of the checkbox element that was clicked, from the message Slack sent back."""
    for block in (body.get("message") or {}).get("blocks", []):
        if block.get("block_id") == action.get("block_id"):
            return {o["value"] for e in block.get("elements", []) for o in e.get("options", [])}
    return set()
