"""The Slack Web API client: every call through the call queue, counted by method and outcome, and retried on
429s, 5xx and connection errors, except a keyed post (it may have been applied: the gateway looks it up first)."""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.queue import SlackCallQueue, call_message, call_priority

KEYED_HEADER = "X-Rollbot-Keyed-Post"  # marks the request for the retry handlers (a JSON body is not shown them)


class CountingClient(AsyncWebClient):
    """Sends every Web API call through the call queue and counts it by method and outcome (429s too)."""

    metrics: Any = None
    queue: SlackCallQueue | None = None  # in front of the rate limiter shared by the replicas

    async def api_call(self, api_method: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.queue is None:
            return await self._counted(api_method, **kwargs)
        args = kwargs.get("json") or kwargs.get("params") or kwargs.get("data") or {}
        channel = args.get("channel") if isinstance(args, dict) else None
        return await self.queue.submit(api_method, channel, lambda: self._counted(api_method, **kwargs),
                                       priority=call_priority.get(), message=call_message.get())

    async def _counted(self, api_method: str, **kwargs: Any) -> Any:
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


def _keyed_post(request: HttpRequest) -> bool:
    """A keyed chat.postMessage is never retried blind (it may have been applied): put_message looks it up first."""
    return KEYED_HEADER in request.headers


def answer_lost(exc: BaseException) -> bool:
    """A 5xx or a network failure: Slack may have posted it. (A 200 error or a 429 was certainly not posted.)"""
    if isinstance(exc, SlackApiError):
        return int(getattr(exc.response, "status_code", 0) or 0) >= 500
    return isinstance(exc, (OSError, TimeoutError, aiohttp.ClientError))


class _ServerErrorRetry(AsyncServerErrorRetryHandler):
    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return not _keyed_post(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error)


class _ConnectionErrorRetry(AsyncConnectionErrorRetryHandler):
    async def _can_retry_async(self, *, state: RetryState, request: HttpRequest,
                               response: HttpResponse | None = None, error: Exception | None = None) -> bool:
        return not _keyed_post(request) and await super()._can_retry_async(
            state=state, request=request, response=response, error=error)


def make_client(token: str, base_url: str, timeout: int = 10) -> CountingClient:
    return CountingClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=5),  # a 429 was not applied: safe to send again
            _ServerErrorRetry(max_retry_count=2),
            _ConnectionErrorRetry(max_retry_count=2),
        ],
    )


def refused_for_good(exc: SlackApiError) -> bool:
    """Slack answered and refused (no such user, a bot, not allowed): no retry changes that. A 5xx or a 429 left
    after the client's own retries is not: the durable row that owes the call tries again."""
    return getattr(exc.response, "status_code", 200) == 200
