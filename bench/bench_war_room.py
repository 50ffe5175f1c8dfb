"""Time from an alert POST to a ready war room (channel, invites, pinned header, Phase 1), with the sandbox
adding a fixed latency to every Slack call and Slack's rate limits on.

    .venv/bin/python bench/bench_war_room.py [--runs 20] [--latency-ms 100]

Prints median and p95 and the Slack calls made before ready, next to the goal (ready within 4 dependent round
trips), and when the first message reached the channel (goal, at --latency-ms 0: before incident-bot's 127 ms);
writes bench/results/war_room.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp
from benchlib import report
from sqlmodel import select

from bot.app import Rollbot
from bot.core.config import load_settings
from bot.core.webserver import start_site
from bot.sandbox.server import SandboxServer
from bot.store.models import TimelineEvent

ALERT = {
    "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "bench", "groupLabels": {},
    "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "PaymentFailureRateHigh", "metric": "payment_failure_rate"},
                "annotations": {"summary": "3.4% of payments failing", "value": "3.4"},
                "startsAt": "2026-01-15T08:58:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "bench"}],
}


async def one_run(latency_ms: float, workdir: Path) -> dict[str, float]:
    sb = SandboxServer(limits=True)
    await sb.start()
    settings = load_settings({
        "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret, "SLACK_API_URL": sb.api_url,
        "DATABASE_URL": f"sqlite:///{workdir / 'bench.db'}", "ROLLBOT_ALERT_TOKEN": "bench",
    })
    bot = Rollbot(settings)
    await bot.start(scheduler=False)
    runner, port = await start_site(bot.web)
    sb.faults.configure(delay_s=latency_ms / 1000)
    calls_before = len(sb.calls)
    started_wall = time.time()
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/alerts/alertmanager", json=ALERT,
            headers={"Authorization": "Bearer bench"}) as response:
        assert response.status == 202, await response.text()
        answered = time.perf_counter() - started
    ready_at = None
    while ready_at is None and time.perf_counter() - started < 30:
        async with bot.db.session() as s:
            event = (await s.exec(select(TimelineEvent).where(TimelineEvent.kind == "war_room_ready"))).first()
        if event is not None:
            ready_at = event.at.timestamp()
        else:
            await asyncio.sleep(0.01)
    assert ready_at is not None, "war room never got ready"
    calls = [c for c in sb.calls[calls_before:] if c["at"] <= ready_at]
    # When the first message reached Slack (the sandbox stamps a call when it answers; its latency is before).
    posts = [c["at"] - c["ms"] / 1000 for c in calls if c["method"] == "chat.postMessage"]
    first_message = min(posts) - started_wall if posts else float("nan")
    sb.faults.configure(delay_s=0)
    await bot.idle()
    await runner.cleanup()
    await bot.stop()
    await sb.stop()
    return {"ready_s": ready_at - started_wall, "ack_s": answered, "calls": len(calls), "first_message_s": first_message}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    results = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(await one_run(args.latency_ms, Path(tmp)))
        print(f"run {i + 1}: ready in {results[-1]['ready_s'] * 1000:.0f} ms, "
              f"{results[-1]['calls']:.0f} Slack calls", flush=True)
    ready = sorted(r["ready_s"] for r in results)
    p95 = ready[min(len(ready) - 1, round(0.95 * (len(ready) - 1)))]
    summary = {
        "runs": args.runs, "latency_ms": args.latency_ms,
        "ready_median_ms": round(statistics.median(ready) * 1000), "ready_p95_ms": round(p95 * 1000),
        "round_trips_median": round(statistics.median(ready) * 1000 / args.latency_ms, 2) if args.latency_ms else None,
        "alert_answered_median_ms": round(statistics.median(r["ack_s"] for r in results) * 1000, 1),
        "slack_calls_median": statistics.median(r["calls"] for r in results),
        "first_message_median_ms": round(statistics.median(r["first_message_s"] for r in results) * 1000, 1),
    }
    summary["goal_round_trips"] = 4
    report("war_room", summary, [
        f"war room ready: median {summary['ready_median_ms']} ms = {summary['round_trips_median']} round trips of "
        f"{args.latency_ms:g} ms (goal <= 4), {summary['slack_calls_median']:g} Slack calls",
        f"first message in the channel: median {summary['first_message_median_ms']} ms after the alert POST "
        f"(goal at 0 ms latency: before the peer's 127 ms)"])


if __name__ == "__main__":
    asyncio.run(main())
