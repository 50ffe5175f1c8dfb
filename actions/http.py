"""HTTP actions: one request built from templates, retried only when the runbook marks it idempotent."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from actions.params import ParamValue, TemplateError
from actions.redact import MASK, Redactor
from actions.result import ActionResult, Monotonic, OnLine, Outcome, Plan
from actions.templates import fill, fill_json, fill_url

log = logging.getLogger(__name__)

BODY_PREVIEW_BYTES = 2048
# Headers whose values are credentials whatever they look like.
_SENSITIVE_HEADER_WORDS = ("authorization", "cookie", "token", "secret", "key", "signature", "password")

Sleep = Callable[[float], Awaitable[None]]


def _statuses(expected: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (expected,) if isinstance(expected, int) else tuple(expected)


@dataclass(frozen=True)
class HttpSpec:
    """A concrete request (templates already filled)."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    text_body: str | None = None
    expected_status: tuple[int, ...] = (200,)  # a single int is accepted and made a tuple
    timeout_s: float = 30.0
    idempotent: bool = False
    retries: int = 2  # extra attempts, used only when idempotent
    backoff_s: float = 0.5  # first retry delay; doubles each time

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "expected_status", _statuses(self.expected_status))
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s): {self.url!r}")
        if self.json_body is not None and self.text_body is not None:
            raise ValueError("give json_body or text_body, not both")
        for name, value in self.headers.items():
            if any(c in name + value for c in "\r\n\x00"):
                raise ValueError(f"header {name!r} contains a line break")

    @property
    def max_attempts(self) -> int:
        return 1 + max(self.retries, 0) if self.idempotent else 1

    def plan(self, redactor: Redactor | None = None) -> Plan:
        redact = (redactor or Redactor()).redact
        headers = {k: (MASK if _sensitive_header(k) else redact(v)) for k, v in self.headers.items()}
        body = (redactor or Redactor()).redact_value(self.json_body) if self.json_body is not None else None
        text = redact(self.text_body) if self.text_body is not None else None
        return Plan(
            kind="http",
            command=f"{self.method} {redact(self.url)}",
            details={
                "method": self.method,
                "url": redact(self.url),
                "headers": headers,
                "json": body,
                "body": text,
                "expected_status": list(self.expected_status),
                "idempotent": self.idempotent,
                "max_attempts": self.max_attempts,
                "timeout_s": self.timeout_s,
            },
        )


@dataclass(frozen=True)
class HttpTemplate:
    """An http action as the runbook states it; `render` fills it with resolved parameters."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    text_body: str | None = None
    expected_status: int | tuple[int, ...] = (200,)
    timeout_s: float = 30.0
    idempotent: bool = False
    retries: int = 2
    backoff_s: float = 0.5

    def render(self, values: Mapping[str, ParamValue]) -> HttpSpec:
        headers = {k: fill(v, values) for k, v in self.headers.items()}
        for name, value in headers.items():
            if any(c in value for c in "\r\n\x00"):
                raise TemplateError(f"header {name!r} would contain a line break")
        return HttpSpec(
            method=self.method,
            url=fill_url(self.url, values),
            headers=headers,
            json_body=fill_json(self.json_body, values) if self.json_body is not None else None,
            text_body=fill(self.text_body, values) if self.text_body is not None else None,
            expected_status=_statuses(self.expected_status),
            timeout_s=self.timeout_s,
            idempotent=self.idempotent,
            retries=self.retries,
            backoff_s=self.backoff_s,
        )


def _sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE_HEADER_WORDS)


async def run_http(
    spec: HttpSpec,
    *,
    client: httpx.AsyncClient | None = None,
    redactor: Redactor | None = None,
    on_line: OnLine | None = None,
    cancel: asyncio.Event | None = None,
    sleep: Sleep = asyncio.sleep,
    monotonic: Monotonic = time.monotonic,
) -> ActionResult:
    """Send the request (with retries if idempotent). Output is a redacted summary of each attempt and the
    first 2 KB of the last response body."""
    redactor = redactor or Redactor()
    started = monotonic()
    run = _HttpRun(spec, redactor, on_line, sleep)
    own_client = client is None
    client = client or httpx.AsyncClient()
    attempts_task = asyncio.create_task(run.attempts(client))
    canceller = asyncio.create_task(cancel.wait()) if cancel is not None else None
    try:
        watched = {attempts_task} if canceller is None else {attempts_task, canceller}
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if attempts_task.done():
            outcome = attempts_task.result()
        else:
            attempts_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await attempts_task
            outcome = Outcome.CANCELLED
            await run.emit("[rollbot] cancelled")
    finally:
        attempts_task.cancel()
        if canceller is not None:
            canceller.cancel()
        if own_client:
            await client.aclose()
    output = "\n".join(run.lines)
    if run.body_preview:
        output += "\n" + run.body_preview
    return ActionResult(
        outcome=outcome,
        exit_code=run.status,
        duration_s=monotonic() - started,
        output=output,
        truncated=run.body_truncated,
        error=run.error,
        attempts=run.attempt,
    )


class _HttpRun:
    def __init__(self, spec: HttpSpec, redactor: Redactor, on_line: OnLine | None, sleep: Sleep) -> None:
        self.spec = spec
        self.redactor = redactor
        self.on_line = on_line
        self.sleep = sleep
        self.lines: list[str] = []
        self.status: int | None = None
        self.error: str | None = None
        self.body_preview = ""
        self.body_truncated = False
        self.attempt = 0

    async def emit(self, line: str) -> None:
        line = self.redactor.redact(line)
        self.lines.append(line)
        if self.on_line is not None:
            try:
                await self.on_line(line)
            except Exception:  # a broken progress display must not break the action
                log.exception("on_line callback failed")

    async def attempts(self, client: httpx.AsyncClient) -> Outcome:
        spec = self.spec
        target = f"{spec.method} {spec.url}"
        outcome = Outcome.FAILED
        for attempt in range(1, spec.max_attempts + 1):
            self.attempt = attempt
            of = f"attempt {attempt}/{spec.max_attempts}"
            t0 = time.perf_counter()
            try:
                status, reason, body, truncated = await self._send(client)
            except httpx.TimeoutException:
                self.status, self.error = None, f"timed out after {spec.timeout_s:g}s"
                outcome, retryable = Outcome.TIMED_OUT, True
                await self.emit(f"{target} -> timed out after {spec.timeout_s:g}s ({of})")
            except httpx.HTTPError as exc:
                self.status, self.error = None, f"{type(exc).__name__}: {exc}"
                outcome, retryable = Outcome.FAILED, True
                await self.emit(f"{target} -> {self.error} ({of})")
            else:
                elapsed_ms = (time.perf_counter() - t0) * 1000
                self.status, self.error = status, None
                self.body_preview = self.redactor.redact(body)
                self.body_truncated = truncated
                await self.emit(f"{target} -> {status} {reason} in {elapsed_ms:.0f} ms ({of})")
                if status in spec.expected_status:
                    return Outcome.SUCCEEDED
                self.error = f"unexpected status {status} (expected {', '.join(map(str, spec.expected_status))})"
                outcome = Outcome.FAILED
                retryable = status >= 500 or status == 429  # a 4xx will not change by asking again
            if not retryable or attempt == spec.max_attempts:
                break
            delay = spec.backoff_s * 2 ** (attempt - 1)
            await self.emit(f"[rollbot] retrying in {delay:g}s (idempotent)")
            await self.sleep(delay)
        return outcome

    async def _send(self, client: httpx.AsyncClient) -> tuple[int, str, str, bool]:
        spec = self.spec
        kwargs: dict[str, Any] = {"headers": dict(spec.headers), "timeout": spec.timeout_s}
        if spec.json_body is not None:
            kwargs["json"] = spec.json_body
        elif spec.text_body is not None:
            kwargs["content"] = spec.text_body.encode("utf-8")
        async with client.stream(spec.method, spec.url, **kwargs) as response:
            body = b""
            truncated = False
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > BODY_PREVIEW_BYTES:
                    body, truncated = body[:BODY_PREVIEW_BYTES], True
                    break
            return response.status_code, response.reason_phrase, _decode(body, response.charset_encoding), truncated


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")
