"""Slack acks while actions stream output: five actions print as fast as they can through the bot's own action
runner (redaction, capped buffers, line callbacks) while the sandbox sends Slack requests, one after another.

    .venv/bin/python bench/bench_ack_under_load.py [--requests 200] [--actions 5]

Measures each request from the sandbox's POST to the bot's answer (the ack), and prints p50/p99 with and
without the load; writes bench/results/ack_under_load.json. Target: p99 under 100 ms while actions stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

from actions.shell import ShellSpec
from bot.app import Rollbot
from bot.config import load_settings
from bot.sandbox.server import SandboxServer
from bot.webserver import start_site

# A busy rollback script: about 500 lines a second (a chatty deploy tool is far less), each with a token to redact.
CHATTY = ("import sys, time\n"
          "end = time.time() + 120\n"
          "while time.time() < end:\n"
          "    sys.stdout.write('progress: step ok token=xoxb-0000-1111 ' + 'x' * 80 + '\\n'); sys.stdout.flush()\n"
          "    time.sleep(0.002)\n")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(sb: SandboxServer, channel: str, n: int) -> list[float]:
    timings = []
    for i in range(n):
        # Alternate a slash command and a status button, the two things people press most under pressure.
        result = await sb.command("U100TL01", channel, "/rollback", "status" if i % 2 else "list")
        assert result["status"] == 200, result
        timings.append(result["ms"])
    return timings


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--actions", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sb = SandboxServer(limits=False)
        await sb.start()
        settings = load_settings({}, slack_bot_token=sb.bot_token, slack_signing_secret=sb.signing_secret,
                                 slack_api_url=sb.api_url, database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        bot = Rollbot(settings)
        await bot.start(scheduler=False)
        runner, port = await start_site(bot.web)
        sb.app_url = f"http://127.0.0.1:{port}/slack/events"
        await sb.command("U500OC01", "C0GENERAL", "/rollback", "start payment")
        await bot.idle()
        channel = (await bot.incidents.open_incidents())[0].channel_id or "C0GENERAL"
        idle = await measure(sb, channel, args.requests)
        lines = [0]

        async def on_line(_line: str) -> None:
            lines[0] += 1

        for i in range(args.actions):
            bot.executions.runner.start(f"bench-{i}", ShellSpec(argv=(sys.executable, "-c", CHATTY), timeout_s=300),
                                        on_line=on_line)
        await asyncio.sleep(0.5)
        before = lines[0]
        loaded = await measure(sb, channel, args.requests)
        streamed = lines[0] - before
        for i in range(args.actions):
            bot.executions.runner.cancel(f"bench-{i}")
        await bot.executions.runner.shutdown()
        await runner.cleanup()
        await bot.stop()
        await sb.stop()
    summary = {
        "requests": args.requests, "streaming_actions": args.actions,
        "lines_streamed_during_measurement": streamed,
        "lines_per_second": round(streamed / (sum(loaded) / 1000), 0),
        "idle_p50_ms": round(statistics.median(idle), 1), "idle_p99_ms": round(percentile(idle, 0.99), 1),
        "loaded_p50_ms": round(statistics.median(loaded), 1), "loaded_p99_ms": round(percentile(loaded, 0.99), 1),
    }
    print(json.dumps(summary, indent=2))
    (Path(__file__).parent / "results" / "ack_under_load.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
