"""Approval clicks: Approve / Decline (with a reason) / Change level / Re-open on the decision message, Approve /
Decline / Type confirmation phrase on an action's approval message, and `/rollback role <role> @user`.

Thin: find the request the click belongs to (refusing forged clicks), ack, and let bot/decision/approvals.py decide.
Work after the ack runs through bot.spawn so it is tracked.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from bot.core.errors import Refused
from bot.decision.approvals import message_key
from bot.decision.confirm_view import CONFIRM_MODAL, PHRASE, challenge_of, confirm_modal, typed_phrase
from bot.decision.views import (
    ACTION_APPROVE,
    ACTION_CONFIRM,
    ACTION_DECLINE,
    APPROVE,
    CHANGE_LEVEL,
    DECLINE,
    DECLINE_MODAL,
    REASON,
    REOPEN,
    decline_modal,
    declined_reason,
)
from bot.store.models import ApprovalRequest
from handlers.commands import Ack, add_subcommand
from handlers.interaction import Click, click_from, incident_for_message, sealed, submit_within_ack, unsealed

if TYPE_CHECKING:
    from handlers.app import App
    from handlers.command_parser import Command

log = logging.getLogger(__name__)


async def tell(bot: App, click: Click, body: dict[str, Any], text: str) -> None:
    """An ephemeral answer to the clicker. Through the click's response_url first: it reaches people who are not
    members of the channel (an outsider viewing a public war room), where chat.postEphemeral cannot."""
    url = body.get("response_url")
    if url:
        try:  # aiohttp: a session costs microseconds (an httpx client builds an SSL context, ~20 ms, per click)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, session.post(
                    url, json={"response_type": "ephemeral", "replace_original": False, "text": text}) as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("response_url answer failed (%s); trying an ephemeral message", exc)
    if click.channel:
        await bot.svc.slack.ephemeral(click.channel, click.user, text)


async def refuse(bot: App, click: Click, body: dict[str, Any], text: str) -> None:
    await tell(bot, click, body, f":no_entry: {text}")


async def request_for_click(bot: App, click: Click, request_id: str | None = None) -> ApprovalRequest | None:
    """The approval request whose message was clicked; None for a click that does not come from that message
    (another channel or incident, a stale or forged payload)."""
    if request_id is None:  # the level select carries no request id: it lives on the decision message only
        incident = await incident_for_message(bot, click, "decision")
        return await bot.approvals.rollback_request(incident.id) if incident else None
    try:
        request = await bot.approvals.get(request_id)
    except Refused:
        return None
    incident = await incident_for_message(bot, click, message_key(request))
    return request if incident is not None and incident.id == request.incident_id else None


def register(bot: App) -> None:
    app = bot.bolt

    async def approve(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        click = click_from(body, action)

        async def work() -> None:
            request = await request_for_click(bot, click, click.value)
            if request is None:
                await refuse(bot, click, body, "That approval does not belong to an incident here.")
                return
            try:
                result = await bot.approvals.vote(request.id, click.user, "approve")
            except Refused as exc:
                await refuse(bot, click, body, str(exc))
                return
            await tell(bot, click, body, result.message)

        bot.spawn(work())  # spawned before the ack, so the harness (and shutdown) can wait for it
        await ack()

    async def decline(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Opens the reason modal, for people allowed to decline (refused at once otherwise)."""
        click = click_from(body, action)

        async def work() -> None:
            request = await request_for_click(bot, click, click.value)
            if request is None or click.trigger_id is None:
                await refuse(bot, click, body, "That approval does not belong to an incident here.")
                return
            try:  # refused at once (and audited) rather than after typing a reason
                await bot.approvals.check_voter(request, click.user, "decline", acting=False)  # the form
            except Refused as exc:
                await refuse(bot, click, body, str(exc))
                return
            what = "Decline the rollback" if request.subject == "rollback" else "Decline this action"
            await bot.svc.slack.client.views_open(trigger_id=click.trigger_id,
                                                  view=sealed(bot, decline_modal(request.id, what), click.user))

        bot.spawn(work())
        await ack()

    @app.view(DECLINE_MODAL)
    async def decline_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = unsealed(bot, body, view)
        if meta is None:
            await ack(response_action="errors", errors={REASON: "This form was not opened for you here."})
            return
        reason = declined_reason((view.get("state") or {}).get("values") or {})
        if not reason:
            await ack(response_action="errors", errors={REASON: "Say why you decline."})
            return
        user = body["user"]["id"]

        async def work() -> str | None:
            try:
                result = await bot.approvals.vote(str(meta["request"]), user, "decline", reason=reason[:500],
                                                  follow_up=False)
            except (Refused, KeyError, ValueError) as exc:
                return str(exc)
            if result.kind in ("late", "closed", "duplicate"):
                return result.message
            bot.spawn(bot.approvals.follow_up(result, user))
            return None

        await submit_within_ack(bot, ack, user, work(), REASON)

    @app.action(CHANGE_LEVEL)
    async def change_level(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        click = click_from(body, action)
        level = str((action.get("selected_option") or {}).get("value", ""))
        bot.spawn(_change_level(bot, click, body, None, level or None))
        await ack()

    @app.action(REOPEN)
    async def reopen(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        click = click_from(body, action)
        bot.spawn(_change_level(bot, click, body, click.value, None))
        await ack()

    async def open_confirmation(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        click = click_from(body, action)

        async def work() -> None:
            request = await request_for_click(bot, click, click.value)
            if request is None or click.trigger_id is None:
                await refuse(bot, click, body, "That approval does not belong to an incident here.")
                return
            try:
                challenge = await bot.approvals.open_confirmation(request.id, click.user)
            except Refused as exc:
                await refuse(bot, click, body, str(exc))
                return
            await bot.svc.slack.client.views_open(trigger_id=click.trigger_id, view=confirm_modal(
                challenge.id, challenge.action_title, challenge.prompt, challenge.phrase, challenge.expires_at))

        bot.spawn(work())
        await ack()

    @app.view(CONFIRM_MODAL)
    async def confirm_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = body["user"]["id"]

        async def work() -> str | None:
            try:
                result = await bot.approvals.confirm(challenge_of(view.get("private_metadata")), user,
                                                     typed_phrase(view["state"]["values"]), follow_up=False)
            except Refused as exc:
                return str(exc)
            bot.spawn(bot.approvals.follow_up(result, user))
            return None

        await submit_within_ack(bot, ack, user, work(), PHRASE)

    for action_id in (APPROVE, ACTION_APPROVE):
        app.action(action_id)(approve)
    for action_id in (DECLINE, ACTION_DECLINE):
        app.action(action_id)(decline)
    app.action(ACTION_CONFIRM)(open_confirmation)
    add_subcommand("role", _role)


async def _change_level(bot: App, click: Click, body: dict[str, Any], request_id: str | None,
                        level: str | None) -> None:
    request = await request_for_click(bot, click, request_id)
    if request is None or request.subject != "rollback":
        await refuse(bot, click, body, "That decision does not belong to an incident here.")
        return
    try:
        message = await bot.approvals.change_level(request.incident_id, level, click.user)
    except Refused as exc:
        await refuse(bot, click, body, str(exc))
        return
    await tell(bot, click, body, message)


async def _role(bot: App, cmd: Command, command: dict[str, Any], ack: Ack) -> None:
    """`/rollback role <role> @user` in an incident channel: a per-incident override, on the timeline."""
    incident = await bot.incidents.by_channel(command.get("channel_id", ""))
    if incident is None:
        await ack(response_type="ephemeral", text="Run `/rollback role` in the incident's channel.")
        return
    assert cmd.role and cmd.user
    try:
        message, changed = await bot.approvals.set_role(incident.id, cmd.role, cmd.user, command["user_id"],
                                                        follow_up=False)
    except Refused as exc:
        await ack(response_type="ephemeral", text=f":no_entry: {exc}")
        return
    if changed:
        bot.spawn(bot.approvals.announce_role(incident.id, cmd.role, cmd.user, command["user_id"]))
    await ack(response_type="ephemeral", text=message)
