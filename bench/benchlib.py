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

    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    while b"listening" not in (line := await asyncio.wait_for(process.stdout.readline(), 60)):
        assert line, "rollbot serve exited before listening"
    return process, asyncio.create_task(process.stdout.read())  # keep its pipe from filling
