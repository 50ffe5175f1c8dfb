"""Action runs from Slack: the step's Run button (a modal with the command, its parameters and Dry run), Cancel,
Retry and Skip on a run's message, the traffic restore's choices, and Run scenario.

Thin: parse, find the incident the click belongs to (refusing forged clicks), ack, and hand over to the engine.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from actions.params import format_value
from bot.core.errors import Refused
from bot.executions.requests import Context, InputRefused, needs_approval, runs_without_form
from bot.executions.views import (
    CANCEL,
    MODE_BLOCK,
    PARAM_BLOCK,
    RETRY,
    RUN_MODAL,
    SCENARIO_RUN,
    SKIP,
    TRAFFIC_CONTINUE,
    TRAFFIC_RETRY,
    TRAFFIC_ROLLBACK,
    ParamField,
    RunModal,
    command_line,
    modal_values,
    run_modal,
)
from bot.slack.blocks import param_label
from handlers.interaction import Click, click_from, incident_for_message, refuse, sealed, unsealed

if TYPE_CHECKING:
    from handlers.app import App

RUN_ACTION = re.compile(r"^run_action\|")


def register(bot: App) -> None:
    app = bot.bolt

    @app.action(RUN_ACTION)
    async def run_clicked(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        bot.spawn(_open_run_modal(bot, click_from(body, action)))

    @app.view(RUN_MODAL)
    async def run_submitted(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        typed, dry = modal_values((view.get("state") or {}).get("values") or {})
        first = next((PARAM_BLOCK + n for n in typed), MODE_BLOCK)
        meta = unsealed(bot, body, view)
        if meta is None:
            await ack(response_action="errors", errors={first: "This form was not opened for you here."})
            return
        try:
            ctx = await bot.executions.context(meta["incident"], meta["step"], meta["task"], meta["action"])
            await bot.executions.authorize(ctx, user)
            bot.executions.gate(ctx)
            bot.executions.prepare(ctx, _without_stage(ctx, typed))  # checks every value before anything is recorded
        except InputRefused as exc:
            block = PARAM_BLOCK + exc.param if exc.param and exc.param in typed else first
            await ack(response_action="errors", errors={block: str(exc)[:150]})
            return
        except (Refused, KeyError) as exc:
            await ack(response_action="errors", errors={first: str(exc)[:150]})
            return
        await ack()

        async def work() -> None:
            try:
                requested = await bot.executions.request(ctx.incident.id, ctx.step.id, ctx.task.id, ctx.action.id, user,
                                                         typed=_without_stage(ctx, typed), dry_run=dry)
            except Refused as exc:
                await _tell(bot, meta.get("channel"), user, f":no_entry: {exc}")
                return
            if not requested.created:
                await _tell(bot, meta.get("channel"), user, requested.message)

        bot.spawn(work())

    _button(bot, CANCEL, lambda ex, user: bot.executions.cancel(ex, user))
    _button(bot, RETRY, lambda ex, user: bot.executions.retry(ex, user))
    _button(bot, SKIP, lambda ex, user: bot.executions.skip(ex, user))
    _button(bot, TRAFFIC_ROLLBACK, lambda ex, user: bot.executions.traffic_choice(ex, user, "rollback"))
    _button(bot, TRAFFIC_RETRY, lambda ex, user: bot.executions.traffic_choice(ex, user, "retry"))
    _button(bot, TRAFFIC_CONTINUE, lambda ex, user: bot.executions.traffic_choice(ex, user, "continue"))

    @app.action(SCENARIO_RUN)
    async def scenario_clicked(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)

        async def work() -> None:
            incident = await incident_for_message(bot, click, f"scenario:{click.value}")
            if incident is None:
                await refuse(bot, click, "That scenario does not belong to an incident here.")
                return
            try:
                if not await bot.executions.scenarios.start(incident.id, click.user):
                    await refuse(bot, click, "The scenario is already running.")
            except Refused as exc:
                await refuse(bot, click, str(exc))

        bot.spawn(work())


def _button(bot: App, action_id: str, call: Callable[[str, str], Awaitable[Any]]) -> None:
    @bot.bolt.action(action_id)
    async def clicked(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        click = click_from(body, action)

        async def work() -> None:
            incident = await incident_for_message(bot, click, f"execution:{click.value}")
            if incident is None:
                await refuse(bot, click, "That run does not belong to an incident here.")
                return
            try:
                outcome = await call(click.value, click.user)
            except Refused as exc:
                await refuse(bot, click, str(exc))
                return
            message = getattr(outcome, "message", None) if not getattr(outcome, "created", True) else None
            if message and click.channel:
                await bot.svc.slack.ephemeral(click.channel, click.user, message)

        bot.spawn(work())


async def _open_run_modal(bot: App, click: Click) -> None:
    parts = click.value.split("|")
    if len(parts) != 3 or click.action.get("action_id") != f"run_action|{parts[1]}":
        await refuse(bot, click, "That Run button is not one of ours.")
        return
    step_id, task_id, action_id = parts
    incident = await incident_for_message(bot, click, f"step:{step_id}")
    if incident is None or click.trigger_id is None:
        await refuse(bot, click, "That step does not belong to an incident here.")
        return
    try:
        ctx = await bot.executions.context(incident.id, step_id, task_id, action_id)
        await bot.executions.authorize(ctx, click.user, acting=False)  # the run (its request) is the act
        bot.executions.gate(ctx)
    except Refused as exc:
        await refuse(bot, click, str(exc))
        return
    if runs_without_form(ctx.action):
        # Nothing to type, nothing at risk, nobody else to ask: the Run click is the whole decision.
        try:
            requested = await bot.executions.request(incident.id, step_id, task_id, action_id, click.user)
        except Refused as exc:
            await refuse(bot, click, str(exc))
            return
        if not requested.created:
            await _tell(bot, click.channel, click.user, requested.message)
        return
    modal = sealed(bot, run_modal(_modal(bot, ctx, click)), click.user)
    await bot.svc.slack.client.views_open(trigger_id=click.trigger_id, view=modal)


def _modal(bot: App, ctx: Context, click: Click) -> RunModal:
    action = ctx.action
    try:
        prepared = bot.executions.prepare(ctx, {})
        values = {k: format_value(v) for k, v in prepared.values.items()}
        command = command_line(prepared.argv)
    except Refused as exc:  # a default could not be read: the person types the value
        values, command = {}, f"{action.script or action.url} {' '.join(action.args)}  ({exc})"
    fields = []
    for p in action.params:
        if p.name == action.stage_param and action.stages:
            continue  # each stage sets it
        # Plain words: the description and the choices, never the parameter's regex (a wrong value is refused
        # with what was wrong when the form is sent).
        hint = " · ".join(x for x in (p.description, f"one of {', '.join(p.choices)}" if p.choices else "") if x)
        initial = "" if p.secret else values.get(p.name) or (ctx.incident.version or "" if "version" in p.name else "")
        fields.append(ParamField(name=p.name, label=param_label(p.name), initial=initial, hint=hint, secret=p.secret))
    approval = ""
    if needs_approval(action) and action.approval:
        titles = [bot.svc.runbook.role(r).title for r in action.approval.roles]
        approval = (" + " if action.approval.all_of else " or ").join(titles)
    if action.stages:
        command += f"  (stages {', '.join(f'{s}%' for s in action.stages)}, each followed by its check)"
    procedure_step = f"Step {ctx.step.number}: {ctx.step.title}"
    return RunModal(incident_id=ctx.incident.id, step_id=ctx.step.id, task_id=ctx.task.id, action_id=action.id,
                    channel=click.channel or "", action_title=action.title, step_label=procedure_step, command=command,
                    fields=tuple(fields), needs_approval=approval, is_drill=ctx.incident.is_drill,
                    danger=action.danger.value)


def _without_stage(ctx: Context, typed: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in typed.items() if not (k == ctx.action.stage_param and ctx.action.stages)}


async def _tell(bot: App, channel: str | None, user: str, text: str) -> None:
    if channel:
        await bot.svc.slack.ephemeral(channel, user, text)
