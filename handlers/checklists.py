"""Checklist clicks: tick items, mark a step done, skip it with a reason, and the header's Status button."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from bot.core import authz
from bot.core.errors import Refused
from bot.incidents.status_view import status_text
from bot.slack.blocks import truncate
from bot.steps.views import parse_checklist_block_id
from handlers.interaction import click_from, incident_for_message, refuse, sealed, submit_within_ack, tell, unsealed

if TYPE_CHECKING:
    from handlers.app import App

# How long a tick's work may hold its ack: Slack waits 3 s in all.
TICK_STORED_WITHIN_SECONDS = 2.0  # the tick in the database
TICK_RENDERED_WITHIN_SECONDS = 1.0  # and, when there is time left, the list re-rendered


def register(bot: App) -> None:
    app = bot.bolt

    @app.action("checklist_tick")
    async def tick(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        click = click_from(body, action)
        stored = asyncio.Event()

        async def work() -> None:
            try:
                parsed = parse_checklist_block_id(action.get("block_id", ""))
                incident = await incident_for_message(bot, click, f"step:{parsed[0]}") if parsed else None
                if parsed is None or incident is None:
                    await refuse(bot, click, "That checklist does not belong to an incident here.")
                    return
                step_id, task_id = parsed
                selected = {o["value"] for o in action.get("selected_options") or []}
                try:
                    await bot.checklists.tick(incident.id, step_id, task_id, selected, click.user)
                except Refused as exc:
                    await refuse(bot, click, str(exc))
                    bot.spawn(bot.warroom.refresh(incident.id, steps=[step_id], header=False))  # undo the tick
                    return
            finally:
                stored.set()
            # The header changes only when the step completes, and complete_step re-renders it then.
            await bot.warroom.refresh(incident.id, steps=[step_id], header=False)

        # The tick is stored before the ack, and its re-render usually too, so Slack's answer means it counted.
        # On a slow database or a loaded machine the ack still goes inside Slack's 3 s and the work finishes after.
        started = asyncio.get_running_loop().time()
        task = bot.spawn(work())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stored.wait(), TICK_STORED_WITHIN_SECONDS)
        left = TICK_RENDERED_WITHIN_SECONDS - (asyncio.get_running_loop().time() - started)
        if left > 0:
            await asyncio.wait([task], timeout=left)
        await ack()

    @app.action("step_done")
    async def done(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)
        incident = await incident_for_message(bot, click, f"step:{click.value}")
        if incident is None:
            await refuse(bot, click, "That step does not belong to an incident here.")
            return
        try:
            await bot.checklists.complete_step(incident.id, click.value, click.user, "done")
        except Refused as exc:
            await refuse(bot, click, str(exc))

    @app.action("step_skip")
    async def skip(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)
        incident = await incident_for_message(bot, click, f"step:{click.value}")
        if incident is None or click.trigger_id is None:
            await refuse(bot, click, "That step does not belong to an incident here.")
            return
        step = (await bot.svc.snapshot(incident.id, with_holders=False)).procedure.step(click.value)
        try:  # refused at once (and audited) rather than after typing a reason
            await authz.require(bot.svc, "step_skip", click.user, authz.Subject(incident.id, step_owner=step.owner),
                                acting=False)  # opens the reason form; the skip itself acts
        except Refused as exc:
            await refuse(bot, click, str(exc))
            return
        try:
            await bot.svc.slack.client.views_open(trigger_id=click.trigger_id, view=sealed(bot, skip_modal(
                incident.id, click.value, f"Step {step.number}: {step.title}"), click.user))
        except SlackApiError as exc:  # an expired or reused trigger: the person clicks again
            await refuse(bot, click, f"Slack did not open the form ({exc.response.get('error')}); click again.")

    @app.view("step_skip")
    async def skip_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = unsealed(bot, body, view)
        reason = (((view.get("state") or {}).get("values") or {}).get("reason", {}).get("reason", {}).get("value")
                  or "").strip()
        if meta is None:
            await ack(response_action="errors", errors={"reason": "This form was not opened for you here."})
            return
        if not reason:
            await ack(response_action="errors", errors={"reason": "Say why the step is skipped."})
            return
        user = body["user"]["id"]

        async def work() -> str | None:
            try:
                await bot.checklists.complete_step(meta["incident"], meta["step"], user, "skipped", reason)
            except (Refused, KeyError) as exc:
                return str(exc)
            return None

        await submit_within_ack(bot, ack, user, work(), "reason")

    @app.action("incident_status")
    async def status_button(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)
        incident = await incident_for_message(bot, click, "header")
        if incident is None:
            await refuse(bot, click, "That header does not belong to an incident here.")
            return
        snap = await bot.svc.snapshot(incident.id, with_holders=False)
        await tell(bot, click, status_text(snap))  # reaches people outside the channel too


def skip_modal(incident_id: str, step_id: str, title: str) -> View:
    from slack_sdk.models.blocks import InputBlock, PlainTextInputElement, SectionBlock

    return View(
        type="modal", callback_id="step_skip", title="Skip a step", submit="Skip step", close="Cancel",
        private_metadata=json.dumps({"incident": incident_id, "step": step_id}),
        blocks=[
            SectionBlock(text=truncate(f"*{title}*\nThe skip and its reason go on the incident timeline.", 3000)),
            InputBlock(block_id="reason", label="Reason",
                       element=PlainTextInputElement(action_id="reason", multiline=True, max_length=500)),
        ],
    )

