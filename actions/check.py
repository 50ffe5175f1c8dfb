"""Check actions: an HTTP probe judged on status and latency.

Three verdicts, because "we could not tell" must not read as "fine": a target that cannot be reached or does
not answer in time gives `inconclusive`, and callers (traffic gates, validation) pause on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from actions.params import ParamValue
from actions.redact import MASK, Redactor
from actions.result import ActionResult, CheckResult, CheckVerdict, Monotonic, OnLine, Outcome, Plan
from actions.templates import fill, fill_url

log = logging.getLogger(__name__)

_MAX_BODY_READ = 64 * 1024  # the body is read (latency includes it) but not kept


@dataclass(frozen=True)
class CheckSpec:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    expected_status: tuple[int, ...] = (200,)  # a single int is accepted and made a tuple
    max_latency_ms: float | None = None
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        expected = self.expected_status
        object.__setattr__(self, "expected_status", (expected,) if isinstance(expected, int) else tuple(expected))
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be http(s): {self.url!r}")

    def plan(self, redactor: Redactor | None = None) -> Plan:
        redact = (redactor or Redactor()).redact
        latency = f", under {self.max_latency_ms:g} ms" if self.max_latency_ms is not None else ""
        expected = "/".join(map(str, self.expected_status))
        return Plan(
            kind="check",
            command=f"{self.method} {redact(self.url)} expecting {expected}{latency}",
            details={
                "method": self.method,
                "url": redact(self.url),
                "headers": {k: MASK for k in self.headers},  # probe headers are usually credentials
                "expected_status": list(self.expected_status),
                "max_latency_ms": self.max_latency_ms,
                "timeout_s": self.timeout_s,
            },
        )


@dataclass(frozen=True)
class CheckTemplate:
    url: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    expected_status: tuple[int, ...] = (200,)  # a single int is accepted and made a tuple
    max_latency_ms: float | None = None
    timeout_s: float = 10.0

    def render(self, values: Mapping[str, ParamValue]) -> CheckSpec:
        return CheckSpec(
            url=fill_url(self.url, values),
            method=self.method,
            headers={k: fill(v, values) for k, v in self.headers.items()},
            expected_status=self.expected_status,
            max_latency_ms=self.max_latency_ms,
            timeout_s=self.timeout_s,
        )


async def run_check(
    spec: CheckSpec, *, client: httpx.AsyncClient | None = None, timer: Monotonic = time.perf_counter
) -> CheckResult:
    """Probe once. Latency is measured from sending the request to the end of the body."""
    own_client = client is None
    client = client or httpx.AsyncClient()
    try:
        t0 = timer()
        async with client.stream(spec.method, spec.url, headers=dict(spec.headers), timeout=spec.timeout_s) as resp:
            read = 0
            async for chunk in resp.aiter_bytes():
                read += len(chunk)
                if read >= _MAX_BODY_READ:
                    break
            latency_ms = (timer() - t0) * 1000
            status = resp.status_code
    except httpx.TimeoutException:
        return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, f"no answer within {spec.timeout_s:g}s")
    except httpx.HTTPError as exc:
        return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, f"unreachable: {type(exc).__name__}: {exc}")
    finally:
        if own_client:
            await client.aclose()
    if status not in spec.expected_status:
        expected = "/".join(map(str, spec.expected_status))
        return CheckResult(CheckVerdict.FAILED, status, latency_ms, f"status {status}, expected {expected}")
    if spec.max_latency_ms is not None and latency_ms > spec.max_latency_ms:
        reason = f"latency {latency_ms:.0f} ms above {spec.max_latency_ms:g} ms"
        return CheckResult(CheckVerdict.FAILED, status, latency_ms, reason)
    return CheckResult(CheckVerdict.PASSED, status, latency_ms, f"status {status} in {latency_ms:.0f} ms")


async def run_check_action(
    spec: CheckSpec,
    *,
    client: httpx.AsyncClient | None = None,
    redactor: Redactor | None = None,
    on_line: OnLine | None = None,
    cancel: asyncio.Event | None = None,
    monotonic: Monotonic = time.monotonic,
) -> ActionResult:
    """A check as an action: passed -> succeeded, failed and inconclusive -> failed (see `result.check`)."""
    return await check_as_action(run_check(spec, client=client), f"{spec.method} {spec.url} -> ",
                                 f"{spec.method} {spec.url} -> [rollbot] cancelled", redactor=redactor,
                                 on_line=on_line, cancel=cancel, monotonic=monotonic)


async def check_as_action(probe: Coroutine[Any, Any, CheckResult], shown_as: str, cancelled_as: str, *,
                          redactor: Redactor | None, on_line: OnLine | None, cancel: asyncio.Event | None,
                          monotonic: Monotonic) -> ActionResult:
    """Run a probe as an action (HTTP and Prometheus checks alike): cancellable, its verdict shown as one redacted
    line prefixed by `shown_as`; passed -> succeeded, failed and inconclusive -> failed."""
    redact = (redactor or Redactor()).redact
    started = monotonic()
    task = asyncio.create_task(probe)
    canceller = asyncio.create_task(cancel.wait()) if cancel is not None else None
    try:
        await asyncio.wait({task} if canceller is None else {task, canceller}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return ActionResult(Outcome.CANCELLED, None, monotonic() - started, redact(cancelled_as))
        check = task.result()
    finally:
        task.cancel()
        if canceller is not None:
            canceller.cancel()
    line = redact(f"{shown_as}{check.verdict.value}: {check.reason}")
    if on_line is not None:
        try:
            await on_line(line)
        except Exception:  # a broken progress display must not break the action
            log.exception("on_line callback failed")
    return ActionResult(
        outcome=Outcome.SUCCEEDED if check.passed else Outcome.FAILED,
        exit_code=check.status,
        duration_s=monotonic() - started,
        output=line,
        error=None if check.passed else f"{check.verdict.value}: {check.reason}",
        check=check,
    )
