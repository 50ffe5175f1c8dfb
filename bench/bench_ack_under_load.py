"""Slack acks while actions stream output: five actions print as fast as they can through the bot's own action
runner (redaction, capped buffers, line callbacks) while the sandbox sends Slack requests, one after another.

    .venv/bin/python bench/bench_ack_under_load.py [--requests 200] [--actions 5] [--load yes|python]

`--load yes` (the default) runs `yes` with a line holding a token to redact: as fast as a pipe goes, the
worst a chatty tool can do. `--load python` is a busy script printing ~500 lines a second.

Measures each request from the sandbox's POST to the bot's answer (the ack), and prints p50/p99 with and
without the load next to the goal; writes bench/results/ack_under_load.json. Goal: p99 <= 100 ms while the
actions stream, and no request left unanswered (Slack gives up after 3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

from benchlib import percentile, report

from actions.shell import ShellSpec
from bot.app import Rollbot
from bot.core.config import load_settings
from bot.core.webserver import start_site
from bot.sandbox.server import SandboxServer

GOAL_P99_MS = 100.0
SLACK_GIVES_UP_MS = 3000.0
LINE = "progress: step ok token=xoxb-0000-1111 " + "x" * 80
# A busy rollback script: about 500 lines a second (a chatty deploy tool is far less), each with a token to redact.
CHATTY = ("import sys, time\n"
          "end = time.time() + 120\n"
          f"while time.time() < end:\n"
          f"    sys.stdout.write({LINE!r} + '\\n'); sys.stdout.flush()\n"
          "    time.sleep(0.002)\n")
LOADS = {"yes": ("yes", LINE), "python": (sys.executable, "-c", CHATTY)}


async def measure(sb: SandboxServer, channel: str, n: int) -> tuple[list[float], int]:
    timings, unanswered = [], 0
    for i in range(n):
        # Alternate a slash command and a status button, the two things people press most under pressure.
        result = await sb.command("U100TL01", channel, "/rollback", "status" if i % 2 else "list")
        if result["status"] != 200 or result["ms"] > SLACK_GIVES_UP_MS:
            unanswered += 1
        timings.append(result["ms"])
    return timings, unanswered


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--actions", type=int, default=5)
    parser.add_argument("--load", choices=sorted(LOADS), default="yes")
    parser.add_argument("--out", default=None, help="where the JSON goes (default bench/results/)")
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
        idle, _ = await measure(sb, channel, args.requests)
        lines = [0]

        async def on_line(_line: str) -> None:
            lines[0] += 1

        for i in range(args.actions):
            bot.executions.runner.start(f"bench-{i}", ShellSpec(argv=LOADS[args.load], timeout_s=300),
                                        on_line=on_line)
        await asyncio.sleep(0.5)
        before = lines[0]
        loaded, unanswered = await measure(sb, channel, args.requests)
        streamed = lines[0] - before
        for i in range(args.actions):
            bot.executions.runner.cancel(f"bench-{i}")
        await bot.executions.runner.shutdown()
        await runner.cleanup()
        await bot.stop()
        await sb.stop()
    p99 = round(percentile(loaded, 0.99), 1)
    summary = {
        "load": args.load, "requests": args.requests, "streaming_actions": args.actions,
        "lines_streamed_during_measurement": streamed,
        "lines_per_second": round(streamed / (sum(loaded) / 1000), 0),
        "idle_p50_ms": round(statistics.median(idle), 1), "idle_p99_ms": round(percentile(idle, 0.99), 1),
        "loaded_p50_ms": round(statistics.median(loaded), 1), "loaded_p99_ms": p99,
        "unanswered": unanswered, "goal_p99_ms": GOAL_P99_MS,
        "goal_met": p99 <= GOAL_P99_MS and unanswered == 0,
    }
    report("ack_under_load", summary, [
        f"acks p99 while {args.actions} '{args.load}' actions stream: {p99} ms (goal <= {GOAL_P99_MS:g} ms), "
        f"{unanswered} unanswered (goal 0) -> {'met' if summary['goal_met'] else 'NOT met'}"], args.out)


if __name__ == "__main__":
    asyncio.run(main())
