"""Prometheus checks: a PromQL query over the HTTP API, judged against a threshold held for a `for` duration.

Three verdicts, as Argo Rollouts' analysis has them: every series meets the threshold over the whole window
-> passed; any sample of any series breaches it -> failed; no data, too little data to cover the window, or a
Prometheus that cannot answer -> inconclusive, which pauses and asks a person (not knowing is not "fine").
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from actions.check import check_as_action
from actions.redact import MASK, Redactor
from actions.result import ActionResult, CheckResult, CheckVerdict, Monotonic, OnLine, Plan

log = logging.getLogger(__name__)

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda v, t: v < t, "<=": lambda v, t: v <= t, ">": lambda v, t: v > t, ">=": lambda v, t: v >= t,
}


@dataclass(frozen=True)
class PrometheusCheckSpec:
    """`query` must stay `op threshold` (e.g. `< 0.2`) for `for_s` seconds up to now."""

    base_url: str  # e.g. http://prometheus:9090
    query: str
    op: str
    threshold: float
    for_s: float = 0.0
    step_s: float = 15.0  # the range query's resolution; a window needs samples at least this dense
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    name: str = ""  # what people read: "API p95 latency"
    # Answers are multiplied by `scale` into `unit`, the threshold's unit (the runbook's 200 ms against a query in
    # seconds: scale 1000), then judged and shown in it.
    unit: str = ""
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}: {self.op!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus url must be http(s): {self.base_url!r}")
        if self.for_s < 0 or self.step_s <= 0:
            raise ValueError("for must be >= 0 and step > 0")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def condition(self) -> str:
        held = f" for {self.for_s:g}s" if self.for_s else ""
        return f"{self.op} {self.shown(self.threshold)}{held}"

    def shown(self, value: float) -> str:
        """A value in the threshold's unit, to 4 significant figures: '0.2' with no unit, '120 ms', '0.4%'."""
        if not self.unit:
            return f"{value:.4g}"
        return f"{value:.4g}{'' if self.unit == '%' else ' '}{self.unit}"

    def plan(self, redactor: Redactor | None = None) -> Plan:
        redact = (redactor or Redactor()).redact
        return Plan(kind="prometheus", command=f"PromQL {self.query} {self.condition} at {redact(self.base_url)}",
                    details={"url": redact(self.base_url), "query": self.query, "op": self.op,
                             "threshold": self.threshold, "unit": self.unit, "scale": self.scale,
                             "for_s": self.for_s, "step_s": self.step_s,
                             "headers": {k: MASK for k in self.headers}, "timeout_s": self.timeout_s})


async def run_prometheus_check(spec: PrometheusCheckSpec, *, client: httpx.AsyncClient | None = None,
                               now: Callable[[], float] = time.time) -> CheckResult:
    """Query once (instant, or a range over the `for` window) and judge every series."""
    own = client is None
    client = client or httpx.AsyncClient()
    label = spec.name or spec.query
    try:
        t = now()
        if spec.for_s > 0:
            params = {"query": spec.query, "start": f"{t - spec.for_s:.3f}", "end": f"{t:.3f}", "step": f"{spec.step_s:g}"}
            body = await _get(client, f"{spec.base_url}/api/v1/query_range", params, spec)
        else:
            body = await _get(client, f"{spec.base_url}/api/v1/query", {"query": spec.query, "time": f"{t:.3f}"}, spec)
    except _Unanswered as exc:
        return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, f"{label}: {exc}")
    finally:
        if own:
            await client.aclose()
    return judge(spec, body["data"], t)


class _Unanswered(Exception):
    pass


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, str], spec: PrometheusCheckSpec) -> Any:
    try:
        resp = await client.get(url, params=params, headers=dict(spec.headers), timeout=spec.timeout_s)
    except httpx.TimeoutException:
        raise _Unanswered(f"Prometheus did not answer within {spec.timeout_s:g}s") from None
    except httpx.HTTPError as exc:
        raise _Unanswered(f"Prometheus unreachable: {type(exc).__name__}: {exc}") from None
    try:
        body = resp.json()
    except ValueError:
        raise _Unanswered(f"Prometheus answered {resp.status_code} without JSON") from None
    if resp.status_code != 200 or body.get("status") != "success":
        raise _Unanswered(f"Prometheus refused the query ({resp.status_code}): {body.get('error', 'no error given')}")
    return body


def _series_name(metric: Mapping[str, str]) -> str:
    shown = {k: v for k, v in metric.items() if k not in ("__name__", "instance", "job")}
    return ", ".join(f"{k}={v}" for k, v in sorted(shown.items())) or metric.get("__name__", "the result")


def judge(spec: PrometheusCheckSpec, data: Mapping[str, Any], now: float) -> CheckResult:
    """The verdict on a query answer (`data` of /api/v1/query or /query_range)."""
    label = spec.name or spec.query
    ok = OPS[spec.op]
    result = data.get("result")
    if data.get("resultType") == "scalar":
        result = [{"metric": {}, "value": result}]
    if not result:
        return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, f"{label}: no data (the query returned no series)")
    worst: tuple[float, str] | None = None
    short: list[str] = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        values = [(float(ts), _scaled(float(v), spec.scale)) for ts, v in samples]
        values = [(ts, v) for ts, v in values if not math.isnan(v)]
        name = _series_name(series.get("metric", {}))
        if not values:
            short.append(name)
            continue
        if spec.for_s > 0 and values[0][0] > now - spec.for_s + spec.step_s * 1.5:
            short.append(f"{name} (data only for the last {now - values[0][0]:.0f}s)")
        for _ts, v in values:
            if not ok(v, spec.threshold) and (worst is None or _worse(v, worst[0], spec.op)):
                worst = (v, name)
    latest = _scaled(_latest(result), spec.scale)
    if worst is not None:
        return CheckResult(CheckVerdict.FAILED, None, None,
                           f"{label}: {spec.shown(worst[0])} ({worst[1]}) is not {spec.condition}")
    if short:
        return CheckResult(CheckVerdict.INCONCLUSIVE, None, None,
                           f"{label}: not enough data to judge {spec.condition}: {'; '.join(short)}")
    return CheckResult(CheckVerdict.PASSED, None, None, f"{label}: {spec.shown(latest)} {spec.condition}")


def _scaled(value: float, scale: float) -> float:
    """Into the threshold's unit, rounded so that 0.12 s reads 120 ms, not 119.99999999999999 ms."""
    return value if scale == 1.0 or math.isnan(value) else float(f"{value * scale:.12g}")


def _worse(a: float, b: float, op: str) -> bool:
    return a > b if op in ("<", "<=") else a < b


def _latest(result: list[Any]) -> float:
    values = []
    for series in result:
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        if samples:
            values.append(float(samples[-1][1]))
    return max(values) if values else math.nan


async def run_prometheus_action(spec: PrometheusCheckSpec, *, client: httpx.AsyncClient | None = None,
                                redactor: Redactor | None = None, on_line: OnLine | None = None,
                                cancel: asyncio.Event | None = None, monotonic: Monotonic = time.monotonic,
                                now: Callable[[], float] = time.time) -> ActionResult:
    """A Prometheus check as an action: passed -> succeeded; failed and inconclusive -> failed (`check` says which)."""
    return await check_as_action(run_prometheus_check(spec, client=client, now=now), "",
                                 f"PromQL {spec.query} -> cancelled", redactor=redactor, on_line=on_line,
                                 cancel=cancel, monotonic=monotonic)
