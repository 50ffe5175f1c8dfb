"""Every Slack Web API call goes through here: retries on 429/5xx/connection errors, and idempotent
posting keyed by (incident, message key) so a retried or re-run operation updates instead of posting twice."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import select

from bot.store.db import Database
from bot.store.models import SlackMessage

log = logging.getLogger(__name__)

Blocks = Sequence[Block | dict[str, Any]]


class CountingClient(AsyncWebClient):
    """Counts every Web API call by method and outcome (429s too) for /metrics."""

    metrics: Any = None
    limiter: Any = None  # bot.ratelimit.SlackRateLimiter, shared by the replicas

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.limiter is not None:
            args = kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {}
            await self.limiter.acquire(api_method, args.get("channel") if isinstance(args, dict) else None)
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as exc:
            if self.metrics is not None:
                status = getattr(exc.response, "status_code", 0)
                self.metrics.slack_calls.labels(api_method, str(exc.response.get("error") or status)).inc()
                if status == 429:
                    self.metrics.ratelimited.labels(api_method).inc()
            raise
        if self.metrics is not None:
            self.metrics.slack_calls.labels(api_method, "ok").inc()
        return response


def make_client(token: str, base_url: str, timeout: int = 10) -> CountingClient:
    return CountingClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),
            AsyncServerErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=2),
        ],
    )


def as_dicts(blocks: Blocks | None) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    return [b.to_dict() if isinstance(b, Block) else b for b in blocks]


class SlackGateway:
    def __init__(self, client: AsyncWebClient, db: Database) -> None:
        self.client = client
        self.db = db
        self._locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.bot_user_id: str | None = None
        self.team_id: str | None = None

    async def identify(self) -> dict[str, Any]:
        response = await self.client.auth_test()
        self.bot_user_id = response["user_id"]
        self.team_id = response.get("team_id")
        return response.data  # type: ignore[return-value]

    async def call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        response = await self.client.api_call(method, json=kwargs)
        return response.data  # type: ignore[return-value]

    # --- messages keyed by incident -----------------------------------------------------------

    async def message_ref(self, incident_id: str, key: str) -> SlackMessage | None:
        async with self.db.session() as session:
            return (await session.exec(
                select(SlackMessage).where(SlackMessage.incident_id == incident_id, SlackMessage.key == key)
            )).first()

    async def put_message(
        self,
        incident_id: str,
        key: str,
        channel: str,
        text: str,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
    ) -> SlackMessage:
        """Post the message the first time, update it afterwards: re-rendering is always safe."""
        async with self._locks[(incident_id, key)]:
            ref = await self.message_ref(incident_id, key)
            if ref is not None:
                await self.client.chat_update(channel=ref.channel, ts=ref.ts, text=text, blocks=as_dicts(blocks))
                return ref
            response = await self.client.chat_postMessage(
                channel=channel, text=text, blocks=as_dicts(blocks), thread_ts=thread_ts, unfurl_links=False
            )
            ref = SlackMessage(incident_id=incident_id, key=key, channel=response["channel"], ts=response["ts"],
                               thread_ts=thread_ts)
            async with self.db.session() as session:
                session.add(ref)
            return ref

    async def update_message(self, incident_id: str, key: str, text: str, blocks: Blocks | None = None) -> bool:
        """Re-render a message already posted; False when it was never posted (nothing to update)."""
        ref = await self.message_ref(incident_id, key)
        if ref is None:
            return False
        async with self._locks[(incident_id, key)]:
            await self.client.chat_update(channel=ref.channel, ts=ref.ts, text=text, blocks=as_dicts(blocks))
        return True

    async def reply(self, channel: str, thread_ts: str | None, text: str, blocks: Blocks | None = None) -> str:
        response = await self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=text, blocks=as_dicts(blocks), unfurl_links=False
        )
        return str(response["ts"])

    async def ephemeral(self, channel: str, user: str, text: str, blocks: Blocks | None = None) -> None:
        try:
            await self.client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=as_dicts(blocks))
        except SlackApiError as exc:  # the user may not be in that channel; an ephemeral is best effort
            log.warning("ephemeral to %s in %s failed: %s", user, channel, exc.response.get("error"))

    async def dm(self, user: str, text: str, blocks: Blocks | None = None) -> tuple[str, str]:
        opened = await self.client.conversations_open(users=user)
        channel = opened["channel"]["id"]
        response = await self.client.chat_postMessage(channel=channel, text=text, blocks=as_dicts(blocks))
        return channel, str(response["ts"])
