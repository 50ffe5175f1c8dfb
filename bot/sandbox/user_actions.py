"""What people do in the workspace that Slack tells the app about: slash commands, clicks, view submissions and
closes, messages (an `app_mention` when the bot is named) and events, each with the trigger id and response_url
Slack would hand out."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bot.sandbox import payloads
from bot.sandbox.delivery import AppDelivery
from bot.sandbox.response_urls import ResponseUrls
from bot.sandbox.webapi import WebApi
from bot.sandbox.workspace import Message, Workspace

TRIGGER_SECONDS = 3.0
EVENT_ACK_SECONDS = 3.0


class UserActions:
    def __init__(self, *, ws: Workspace, api: WebApi, clock: Callable[[], float], delivery: AppDelivery,
                 responses: ResponseUrls, changed: Callable[[], None]) -> None:
        self.ws = ws
        self.api = api
        self.clock = clock
        self.delivery = delivery
        self.responses = responses
        self.changed = changed  # tells open web clients to look again

    def trigger(self, user: str) -> str:
        trigger_id = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"
        self.api.triggers[trigger_id] = (user, self.clock() + TRIGGER_SECONDS)
        return trigger_id

    async def command(self, user: str, channel: str, command: str, text: str) -> dict[str, Any]:
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        response_url = self.responses.issue(user, channel, None)
        form = payloads.command_form(self.ws, user, channel, command, text, response_url, self.trigger(user))
        result = await self.delivery.deliver(urlencode(form).encode(), "application/x-www-form-urlencoded", "command")
        if result["status"] == 200 and result["body"]:
            body = result["body"] if isinstance(result["body"], dict) else {"text": str(result["body"])}
            self.responses.show(self.responses.entry(response_url), body, count_use=False)
        self.changed()
        return result

    def find_message(self, user: str, channel_id: str, ts: str) -> tuple[Message, bool]:
        channel = self.ws.channels.get(channel_id)
        if channel is not None:
            message = channel.find(ts)
            if message is not None:
                return message, False
        for ephemeral in self.ws.ephemerals.get(user, []):
            if ephemeral["ts"] == ts and ephemeral["channel"] == channel_id:
                return Message(ts=ts, user=self.ws.bot.id, text=ephemeral["text"], blocks=ephemeral["blocks"]), True
        raise payloads.ClickError(f"no message {ts} in {channel_id} for {user}")

    async def click(self, user: str, channel: str, ts: str, *, action_id: str | None = None, text: str | None = None,
                    value: str | None = None, block_id: str | None = None) -> dict[str, Any]:
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        message, ephemeral = self.find_message(user, channel, ts)
        block, element, option = payloads.find_action(message.blocks or [], action_id, text, value, block_id)
        action, values = payloads.click(message, user, block, element, option, f"{self.clock():.6f}")
        payload = payloads.block_actions(self.ws, user, channel, message, action, values,
                                         self.responses.issue(user, channel, ts), self.trigger(user), ephemeral)
        body = urlencode({"payload": json.dumps(payload)}).encode()
        result = await self.delivery.deliver(body, "application/x-www-form-urlencoded", "block_actions")
        self.changed()
        return result

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> dict[str, Any]:
        views = self.ws.views.get(user, [])
        index = next((i for i, v in enumerate(views) if v["id"] == view_id), None)
        if index is None:
            raise ValueError(f"no open view {view_id} for {user}")
        payload = payloads.view_submission(self.ws, user, views[index], values, self.trigger(user))
        body = urlencode({"payload": json.dumps(payload)}).encode()
        result = await self.delivery.deliver(body, "application/x-www-form-urlencoded", "view_submission")
        answer = result["body"] if isinstance(result["body"], dict) else {}
        action = answer.get("response_action")
        if result["status"] == 200 and action == "errors":
            views[index]["errors"] = answer.get("errors", {})
        elif result["status"] == 200 and action == "update":
            views[index] = views[index] | answer.get("view", {})
        elif result["status"] == 200 and action == "push":
            views.append(answer.get("view", {}) | {"id": self.ws.new_id("V")})
        elif result["status"] == 200 and action == "clear":
            views.clear()
        elif result["status"] == 200:
            del views[index]
        self.changed()
        return result

    def close_view(self, user: str, view_id: str) -> dict[str, Any]:
        """The user pressed Close (or Escape): the view goes, as in Slack; no `view_closed` is sent (the app
        asks for none)."""
        views = self.ws.views.get(user, [])
        if not any(v["id"] == view_id for v in views):
            raise ValueError(f"no open view {view_id} for {user}")
        self.ws.views[user] = [v for v in views if v["id"] != view_id]
        self.changed()
        return {"ok": True}

    async def say(self, user: str, channel_id: str, text: str, thread_ts: str | None = None) -> dict[str, Any]:
        """A person posts a message: it joins the channel, and the app hears an `app_mention` when it is named
        (the one message event its manifest subscribes to)."""
        if not self.ws.human(user):
            raise ValueError(f"unknown user {user}")
        channel = self.ws.channels.get(channel_id)
        if channel is None or user not in channel.members:
            raise ValueError(f"{user} is not in {channel_id}")
        if thread_ts and channel.find(thread_ts) is None:
            raise ValueError(f"no message {thread_ts} in {channel_id}")
        message = Message(ts=self.api.next_ts(), user=user, text=text, thread_ts=thread_ts)
        channel.messages.append(message)
        self.changed()
        delivered: dict[str, Any] | None = None
        if f"<@{self.ws.bot.id}>" in text and self.delivery.reachable:
            event = {"type": "app_mention", "user": user, "text": text, "ts": message.ts, "channel": channel_id,
                     "event_ts": message.ts} | ({"thread_ts": thread_ts} if thread_ts else {})
            delivered = await self.event(event)
        return {"ok": True, "ts": message.ts, "delivered": delivered}

    async def event(self, event: dict[str, Any]) -> dict[str, Any]:
        event_id = f"Ev{secrets.token_hex(5).upper()}"
        envelope = payloads.event_callback(self.ws, event, event_id, int(self.clock()))
        body = json.dumps(envelope).encode()
        result = await self.delivery.deliver(body, "application/json", "event", timeout=EVENT_ACK_SECONDS)
        retries = 0
        while result["status"] in (0, 500, 502, 503) and retries < 3:  # Slack retries 3 times
            retries += 1
            reason = "http_timeout" if result["status"] == 0 else "http_error"
            result = await self.delivery.deliver(body, "application/json", "event",
                                                 {"X-Slack-Retry-Num": str(retries), "X-Slack-Retry-Reason": reason},
                                                 timeout=EVENT_ACK_SECONDS)
        result["retries"] = retries
        result["event_id"] = event_id
        self.changed()
        return result
