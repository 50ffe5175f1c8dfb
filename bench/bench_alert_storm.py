"""Alert storm: 1,000 Alertmanager posts for one alert group within 10 s to a `rollbot serve` process.

    .venv/bin/python bench/bench_alert_storm.py [--posts 1000] [--seconds 10] [--database-url URL]
                                                [--sandbox-in-process]

Measures each post's answer time (ingest latency), the incidents opened and the Slack calls made beyond the war
room; prints them next to the goals and writes bench/results/alert_storm.json. Goals: 1 incident, <= 10 Slack
calls beyond the war room, ingest p99 <= 20 ms. Also printed: the p99 of the posts sent after the first answer
(the incident's opening apart), the Slack calls after the war room was ready by method, and the slowest posts.
`--posts 1` is the control: the calls a single alert's war room makes after it is ready (pages, Phase 1).
The sandbox runs as its own process, as Slack is another machine; `--sandbox-in-process` runs it in this process
(as the figures before 2026-12-02 were measured), where its war-room work delays this process reading answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import SandboxProcess, free_port, percentile, report, start_serve
from sqlmodel import func, select

from bot.sandbox.server import SandboxServer
from bot.store.db import Database
from bot.store.models import Incident, TimelineEvent

GOAL_P99_MS = 20.0
GOAL_EXTRA_CALLS = 10
ALERT = {
    "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "storm",
    "groupLabels": {"alertname": "PaymentFailureRateHigh"}, "commonLabels": {}, "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "PaymentFailureRateHigh", "metric": "payment_failure_rate"},
                "annotations": {"summary": "3.4% of payments failing", "value": "3.4"},
                "startsAt": "2026-01-15T08:58:00Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "storm"}],
}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--sandbox-in-process", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        port = free_port()
        sb: SandboxServer | SandboxProcess
        if args.sandbox_in_process:
            sb = SandboxServer(limits=True)
            sb.app_url = f"http://127.0.0.1:{port}/slack/events"
        else:
            sb = SandboxProcess(f"http://127.0.0.1:{port}/slack/events")
        await sb.start()
        process, drain = await start_serve(os.environ | {
            "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret, "SLACK_API_URL": sb.api_url,
            "DATABASE_URL": db_url, "ROLLBOT_ALERT_TOKEN": "bench", "PORT": str(port)})
        try:
            db = Database(db_url)
            latencies: list[float] = []
            statuses: list[int] = []
            by_post: list[tuple[int, float]] = []
            spans: list[tuple[float, float]] = []  # (sent, answered) of each post
            calls_before = len(await _calls(sb))
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
                async def post(i: int) -> None:
                    started = time.perf_counter()
                    async with session.post(f"http://127.0.0.1:{port}/alerts/alertmanager", json=ALERT,
                                            headers={"Authorization": "Bearer bench"}) as response:
                        await response.read()
                        statuses.append(response.status)
                    latencies.append((time.perf_counter() - started) * 1000)
                    by_post.append((i, latencies[-1]))
                    spans.append((started, time.perf_counter()))

                began = time.perf_counter()
                tasks = []
                for i in range(args.posts):  # an even pace: the storm arrives over `seconds`, not all at once
                    await asyncio.sleep(max(0.0, began + i * args.seconds / args.posts - time.perf_counter()))
                    tasks.append(asyncio.create_task(post(i)))
                await asyncio.gather(*tasks)
                cleared_s = time.perf_counter() - began
            await asyncio.sleep(5)  # let the war room and anything after the answers settle
            async with db.session() as s:
                incidents = (await s.exec(select(func.count()).select_from(Incident))).one()
                ready = (await s.exec(select(TimelineEvent).where(TimelineEvent.kind == "war_room_ready"))).first()
            ready_at = ready.at.timestamp() if ready is not None else float("inf")
            after_ready = [c for c in (await _calls(sb))[calls_before:] if c["at"] > ready_at]
            extra_calls = len(after_ready)
            by_method: dict[str, int] = {}
            for c in after_ready:
                by_method[c["method"]] = by_method.get(c["method"], 0) + 1
        finally:
            process.terminate()
            await process.wait()
            drain.cancel()
        await db.dispose()
        await sb.stop()
    p99 = round(percentile(latencies, 0.99), 1)
    summary_sandbox = "in this process" if args.sandbox_in_process else "its own process"
    # The posts sent after the first answer (the incident open): the storm's steady state, apart from its opening.
    opened_at = min(end for _, end in spans)
    steady = [(end - sent) * 1000 for sent, end in spans if sent > opened_at]
    summary = {
        "posts": args.posts, "over_s": args.seconds, "database": db_url.split(":", 1)[0],
        "sandbox": summary_sandbox,
        "answered_2xx": sum(1 for s in statuses if 200 <= s < 300), "cleared_s": round(cleared_s, 1),
        "ingest_p50_ms": round(statistics.median(latencies), 1), "ingest_p99_ms": p99,
        "ingest_p99_after_open_ms": round(percentile(steady, 0.99), 1) if steady else None,
        "posts_before_open_answered": len(spans) - len(steady),
        "incidents": incidents, "slack_calls_after_war_room_ready": extra_calls,
        "calls_after_ready_by_method": by_method,
        # which posts were slowest (post number, ms): the tail's place in the storm
        "slowest": [(i, round(ms, 1)) for i, ms in sorted(by_post, key=lambda p: -p[1])[:12]],
        "goal_p99_ms": GOAL_P99_MS, "goal_extra_calls": GOAL_EXTRA_CALLS,
        "goal_met": p99 <= GOAL_P99_MS and incidents == 1 and extra_calls <= GOAL_EXTRA_CALLS,
    }
    report("alert_storm", summary, [
        f"ingest p99: {p99} ms (goal <= {GOAL_P99_MS:g} ms), p50 {summary['ingest_p50_ms']} ms, p99 of the "
        f"{len(steady)} posts sent after the incident opened {summary['ingest_p99_after_open_ms']} ms; "
        f"{args.posts} posts cleared in {summary['cleared_s']} s",
        f"incidents: {incidents} (goal 1); Slack calls after the war room was ready: {extra_calls} "
        f"(goal <= {GOAL_EXTRA_CALLS})"], args.out)


async def _calls(sb: SandboxServer | SandboxProcess) -> list[dict[str, Any]]:
    return await sb.calls() if isinstance(sb, SandboxProcess) else list(sb.calls)


if __name__ == "__main__":
    asyncio.run(main())
