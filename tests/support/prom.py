"""A real Prometheus and a real Alertmanager (Debian's `prometheus` and `prometheus-alertmanager`) for tests.

Each runs as a child process on a free port with its own temporary config and storage, with intervals of a
second so rules fire and notifications go out quickly. A small exporter of the test's own serves `/metrics` with
the values the test sets. Tests wait on conditions with a bound (`wait_until`), never for a fixed time.

Without the binaries the tests skip with the package to install; in CI (`CI` set) they fail instead, since
`.ci/run` installs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml
from aiohttp import web

from bot.core.webserver import start_site

T = TypeVar("T")

# Generous: a busy 2-core CI machine starts Prometheus in a second or two, but must never fail a test for it.
START_TIMEOUT_S = 60.0
WAIT_TIMEOUT_S = 60.0


def require_binary(package: str, *names: str) -> str:
    """The path of the first of `names` on PATH; skip (or fail in CI) naming the Debian package otherwise."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    message = f"{' / '.join(names)} not found: install Debian's `{package}` (apt-get install -y {package})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run installs it, so CI must run these tests")
    pytest.skip(message)


def prometheus_binary() -> str:
    return require_binary("prometheus", "prometheus")


def alertmanager_binary() -> str:
    return require_binary("prometheus-alertmanager", "prometheus-alertmanager", "alertmanager")


async def wait_until(check: Callable[[], Awaitable[T | None]], what: str, *, timeout: float = WAIT_TIMEOUT_S,
                     interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = await check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the test's own exporter ------------------------------------------------------------------------------------


@dataclass
class Exporter:
    """Serves `/metrics` in the Prometheus text format with the gauges the test sets."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)
    # Counters growing at a rate per second of wall time (what `rate()` reads: request counters, histogram buckets).
    rates: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = field(default_factory=dict)
    url: str = ""
    _runner: web.AppRunner | None = None

    def set(self, name: str, value: float, **labels: str) -> None:
        self.values[(name, tuple(sorted(labels.items())))] = value

    def count(self, name: str, per_second: float, **labels: str) -> None:
        """Serve a counter that grows by `per_second` each second from now."""
        self.rates[(name, tuple(sorted(labels.items())))] = (time.monotonic(), per_second)

    def remove(self, name: str, **labels: str) -> None:
        """Stop serving a series (Prometheus marks it stale on the next scrape: queries then find no data)."""
        self.values.pop((name, tuple(sorted(labels.items()))), None)

    def render(self) -> str:
        now = time.monotonic()
        counters = {key: (now - since) * per_second for key, (since, per_second) in self.rates.items()}
        lines = []
        for kind, series in (("gauge", self.values), ("counter", counters)):
            for name in sorted({n for n, _ in series}):
                lines.append(f"# TYPE {name} {kind}")
                for (n, labels), value in sorted(series.items()):
                    if n == name:
                        pairs = ",".join(f'{k}="{v}"' for k, v in labels)
                        lines.append(f"{name}{{{pairs}}} {value!r}" if pairs else f"{name} {value!r}")
        return "\n".join(lines) + "\n"

    @property
    def target(self) -> str:
        return self.url.removeprefix("http://")

    async def start(self) -> None:
        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(text=self.render(), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        self._runner, port = await start_site(app)
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@asynccontextmanager
async def exporter() -> AsyncIterator[Exporter]:
    exp = Exporter()
    await exp.start()
    try:
        yield exp
    finally:
        await exp.stop()


class _ExitedEarly(RuntimeError):
    pass


# --- child processes --------------------------------------------------------------------------------------------


@dataclass
class _Process:
    name: str
    workdir: Path
    url: str = ""
    proc: asyncio.subprocess.Process | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def _spawn(self, make_argv: Callable[[int], Sequence[str]]) -> None:
        """Start on a free port; once more on another if the first was taken meanwhile (it exits at once)."""
        for attempt in range(3):
            try:
                await self._spawn_on(make_argv(port := free_port()), port)
                return
            except _ExitedEarly:
                if attempt == 2:
                    raise

    async def _spawn_on(self, argv: Sequence[str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=log, cwd=self.workdir,
                                                             start_new_session=True)
        async with httpx.AsyncClient(timeout=2) as client:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if self.proc.returncode is not None:
                    raise _ExitedEarly(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/-/ready")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    await self.stop()
                    raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S:g}s:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def get_json(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(f"{self.url}{path}", params=params)
            resp.raise_for_status()
            return resp.json()


@dataclass
class Prometheus(_Process):
    """A Prometheus scraping the given targets every second and evaluating `rules` every second."""

    async def start(self, *, targets: Sequence[str], rules: Sequence[Mapping[str, Any]] = (),
                    alertmanager: str | None = None) -> None:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "app", "static_configs": [{"targets": list(targets)}]}],
        }
        if rules:
            (self.workdir / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": list(rules)}]}))
            config["rule_files"] = [str(self.workdir / "rules.yml")]
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]}
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        await self._spawn(lambda port: [
            binary, f"--config.file={self.workdir / 'prometheus.yml'}", f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s", "--log.level=warn",
        ])

    async def query(self, promql: str) -> list[dict[str, Any]]:
        body = await self.get_json("/api/v1/query", query=promql)
        return list(body["data"]["result"])

    async def wait_for_value(self, promql: str, accept: Callable[[float], bool], what: str) -> float:
        """Wait until the instant query's first series has a value `accept` takes (i.e. a scrape happened)."""

        async def check() -> list[float]:
            result = await self.query(promql)
            values = [float(result[0]["value"][1])] if result else []
            return values if values and accept(values[0]) else []  # a list: truthy even when the value is 0

        return (await wait_until(check, what))[0]

    async def wait_for_no_data(self, promql: str, what: str) -> None:
        async def check() -> bool:
            return not await self.query(promql)

        await wait_until(check, what)


@dataclass
class Alertmanager(_Process):
    """An Alertmanager (clustering off) sending every group to one webhook within about a second."""

    async def start(self, *, webhook_url: str, bearer_token: str | None = None,
                    group_by: Sequence[str] = ("alertname",), repeat_interval: str = "1h") -> None:
        binary = alertmanager_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": True}
        if bearer_token:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
        config = {
            "route": {"receiver": "rollbot", "group_by": list(group_by), "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": repeat_interval},
            "receivers": [{"name": "rollbot", "webhook_configs": [webhook]}],
        }
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        await self._spawn(lambda port: [
            binary, f"--config.file={self.workdir / 'alertmanager.yml'}", f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn",
        ])

    async def alerts(self, **params: Any) -> list[dict[str, Any]]:
        return list(await self.get_json("/api/v2/alerts", **params))

    async def silences(self) -> list[dict[str, Any]]:
        return list(await self.get_json("/api/v2/silences"))


@asynccontextmanager
async def prometheus(workdir: Path, **start: Any) -> AsyncIterator[Prometheus]:
    prom = Prometheus("prometheus", workdir)
    await prom.start(**start)
    try:
        yield prom
    finally:
        await prom.stop()


@asynccontextmanager
async def alertmanager(workdir: Path, **start: Any) -> AsyncIterator[Alertmanager]:
    am = Alertmanager("alertmanager", workdir)
    await am.start(**start)
    try:
        yield am
    finally:
        await am.stop()
