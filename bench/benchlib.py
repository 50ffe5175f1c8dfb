"""What every bench shares: percentiles, and the report (figure next to goal, JSON under bench/results/)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def report(name: str, summary: dict[str, Any], lines: list[str], out: str | Path | None = None) -> None:
    """Print the summary and the figure-versus-goal lines; write the JSON (bench/results/<name>.json)."""
    summary = {**summary, "machine": machine()}
    print(json.dumps(summary, indent=2))
    for line in lines:
        print(line)
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def start_serve(env: dict[str, str]) -> tuple[Any, Any]:
    """`rollbot serve` as its own process (as deployed); returns it once listening, and the task draining its output."""
    import asyncio
    import sys

    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    while b"listening" not in (line := await asyncio.wait_for(process.stdout.readline(), 60)):
        assert line, "rollbot serve exited before listening"
    return process, asyncio.create_task(process.stdout.read())  # keep its pipe from filling


class SandboxProcess:
    """The Slack sandbox as its own process: Slack is another machine, so its work must not share the event loop
    of the bench that times the bot's answers (in-process, every war-room call the sandbox answers delays the
    bench reading an answer)."""

    def __init__(self, app_url: str, limits: bool = True) -> None:
        import secrets

        self.port = free_port()
        self.app_url = app_url
        self.limits = limits
        self.bot_token = f"xoxb-{secrets.randbelow(10**12)}-{secrets.token_hex(12)}"
        self.signing_secret = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.base_url}/api/"
        self.process: Any = None

    async def start(self) -> None:
        import asyncio
        import sys

        argv = [sys.executable, "-m", "bot.cli.main", "sandbox", "--port", str(self.port), "--app-url", self.app_url,
                "--bot-token", self.bot_token, "--signing-secret", self.signing_secret]
        self.process = await asyncio.create_subprocess_exec(
            *argv, *([] if self.limits else ["--no-limits"]), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT)
        assert self.process.stdout is not None
        while b"sandbox:" not in (line := await asyncio.wait_for(self.process.stdout.readline(), 60)):
            assert line, "rollbot sandbox exited before listening"
        self._drain = asyncio.create_task(self.process.stdout.read())

    async def calls(self) -> list[dict[str, Any]]:
        import aiohttp

        async with aiohttp.ClientSession() as http, http.get(f"{self.base_url}/_sandbox/state") as response:
            return list((await response.json())["calls"])

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
            self._drain.cancel()
