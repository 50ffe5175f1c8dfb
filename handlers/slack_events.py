"""The one HTTP endpoint Slack calls (commands, interactivity, events), and Socket Mode when configured."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request

if TYPE_CHECKING:
    from bot.app import Rollbot


def register(bot: Rollbot) -> None:
    @bot.bolt.event("app_mention")
    async def on_mention(ack, event, say) -> None:  # type: ignore[no-untyped-def]
        await ack()
        await say(text="Type `/rollback help` to see what I can do.", thread_ts=event.get("ts"))

    @bot.bolt.event("member_joined_channel")
    async def on_join(ack) -> None:  # type: ignore[no-untyped-def]
        await ack()


def add_routes(app: web.Application, bot: Rollbot) -> None:
    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        bolt_response = await bot.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    app.router.add_post("/slack/events", slack_events)
