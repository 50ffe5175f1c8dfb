"""Fifty incidents at once: 50 distinct alerts (50 triggers) posted in the same minute to a `rollbot serve`
process, against the sandbox with Slack's real rate-limit tiers on.

    .venv/bin/python bench/bench_fifty_incidents.py [--incidents 50] [--seconds 200] [--latency-ms 0]
                                                    [--database-url URL] [--serve-log PATH]

Measures how many war rooms are ready (and when the last one was), Slack calls answered 429, timer lateness and
the bot process's peak RSS. Prints each next to its goal; writes bench/results/fifty_incidents.json. Goals: all
war rooms ready, 0 429s, timer lateness p99 <= 2 s, RSS <= 150 MB.

Timer lateness, the goal, is due -> handler *started*: the bot's own `rollbot_timer_lateness_seconds` histogram
read from /metrics (overall and by kind; bucket bounds, and 2 s is one, so the share within 2 s is exact). A
second figure, due -> handler *finished* (the rows' `fired_at`; a row still pending past due counts until the
end), includes the Slack calls the handler awaited: fifty incidents paging and DMing the same people are paced by
Slack's limits (a message a second per DM channel), which no scheduling can beat, so it is reported, not a goal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from benchlib import free_port, percentile, report, start_serve
from sqlmodel import func, select

from bot.runbook.loader import DEFAULT_RUNBOOK
from bot.sandbox.server import SandboxServer
from bot.store.db import Database
from bot.store.models import Incident, TimelineEvent, Timer

GOALS = {"ready": "all", "http_429": 0, "timer_start_lateness_p99_s": 2.0, "rss_mb": 150.0}


def runbook_with_triggers(n: int, out: Path) -> Path:
    """The default runbook plus `n` triggers, one alert name each, so n alerts open n incidents."""
    data = yaml.safe_load(DEFAULT_RUNBOOK.read_text())
    examples = DEFAULT_RUNBOOK.parent.parent / "examples"
    text = DEFAULT_RUNBOOK.read_text().replace("scripts_dir: ../examples", f"scripts_dir: {examples}")
    data = yaml.safe_load(text)
    for i in range(n):
        data["triggers"].append({"id": f"bench_outage_{i:02d}", "level": "immediate", "title": f"Bench outage {i}",
                                 "description": "bench", "match": {"alertnames": [f"BenchOutage{i:02d}"]},
                                 "scenario": "complete_system_failure"})
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def alert(i: int) -> dict[str, Any]:
    return {
        "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": f"bench-{i}",
        "groupLabels": {"alertname": f"BenchOutage{i:02d}"}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": f"BenchOutage{i:02d}", "service": f"svc{i}"},
                    "annotations": {"summary": f"service {i} down"}, "startsAt": "2026-01-15T08:58:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": f"bench{i:04d}"}],
    }


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def histograms(text: str, name: str) -> dict[str, dict[str, Any]]:
    """A labelled Prometheus histogram from the text exposition, by its `kind` label and summed ("all"):
    cumulative counts by upper bound, and the count."""
    by_kind: dict[str, dict[float, float]] = {}
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            labels, value = line[len(name) + 8:].rsplit("} ", 1)
            pairs = dict(part.split("=", 1) for part in labels.split(","))
            bound = pairs["le"].strip('"')
            buckets = by_kind.setdefault(pairs.get("kind", '"all"').strip('"'), {})
            buckets[float("inf") if bound == "+Inf" else float(bound)] = float(value)
    total: dict[float, float] = {}
    for buckets in by_kind.values():
        for bound, n in buckets.items():
            total[bound] = total.get(bound, 0.0) + n
    by_kind["all"] = total
    return {kind: {"buckets": sorted(b.items()), "count": int(b.get(float("inf"), 0))} for kind, b in by_kind.items()}


def bucket_quantile(h: dict[str, Any], q: float) -> float | None:
    """The smallest bucket bound holding at least q of the observations."""
    return next((bound for bound, n in h["buckets"] if h["count"] and n >= q * h["count"]), None)


def share_within(h: dict[str, Any], bound: float) -> float:
    return next((n / h["count"] for b, n in h["buckets"] if b == bound), 0.0) if h["count"] else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--incidents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=200)
    parser.add_argument("--latency-ms", type=float, default=0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--serve-log", default=None, help="write the bot's own log here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        sb = SandboxServer(limits=True)
        await sb.start()
        sb.faults.configure(delay_s=args.latency_ms / 1000)
        port = free_port()
        env = os.environ | {
            "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret, "SLACK_API_URL": sb.api_url,
            "DATABASE_URL": db_url, "ROLLBOT_ALERT_TOKEN": "bench", "PORT": str(port),
            "ROLLBOT_RUNBOOK": str(runbook_with_triggers(args.incidents, Path(tmp) / "runbook.yml")),
        }
        process, drain = await start_serve(env)
        try:
            sb.app_url = f"http://127.0.0.1:{port}/slack/events"
            db = Database(db_url)
            calls_before = len(sb.calls)
            started = time.time()
            async with aiohttp.ClientSession() as session:
                async def post(i: int) -> int:
                    async with session.post(f"http://127.0.0.1:{port}/alerts/alertmanager", json=alert(i),
                                            headers={"Authorization": "Bearer bench"}) as response:
                        return response.status
                statuses = await asyncio.gather(*(post(i) for i in range(args.incidents)))
            assert all(s == 202 for s in statuses), statuses
            peak_rss, ready, all_ready_s = 0.0, 0, None
            while time.time() - started < args.seconds:
                peak_rss = max(peak_rss, rss_mb(process.pid))
                async with db.session() as s:
                    ready = (await s.exec(select(func.count()).select_from(TimelineEvent).where(
                        TimelineEvent.kind == "war_room_ready"))).one()
                if ready >= args.incidents and all_ready_s is None:
                    all_ready_s = time.time() - started
                await asyncio.sleep(1)
            peak_rss = max(peak_rss, rss_mb(process.pid, "VmHWM"))
            end = datetime.now(UTC)
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as got:
                started_by_kind = histograms(await got.text(), "rollbot_timer_lateness_seconds")
                started_late = started_by_kind["all"]
            async with db.session() as s:
                incidents = (await s.exec(select(func.count()).select_from(Incident))).one()
                timers = (await s.exec(select(Timer))).all()
            lateness = []
            by_kind: dict[str, list[float]] = {}
            for t in timers:
                due = t.due_at if t.due_at.tzinfo else t.due_at.replace(tzinfo=UTC)
                if t.status == "fired" and t.fired_at is not None:
                    fired = t.fired_at if t.fired_at.tzinfo else t.fired_at.replace(tzinfo=UTC)
                    lateness.append(max(0.0, (fired - due).total_seconds()))
                elif t.status in ("pending", "claimed") and due < end:
                    lateness.append((end - due).total_seconds())
                else:
                    continue
                kind = t.kind if t.kind != "event" else f"event:{t.payload.get('listener')}"
                by_kind.setdefault(kind, []).append(lateness[-1])
            calls = sb.calls[calls_before:]
        finally:
            process.terminate()
            await process.wait()
            served = await drain
            if args.serve_log:
                await asyncio.to_thread(Path(args.serve_log).write_bytes, served)
        await db.dispose()
        await sb.stop()
    too_many = sum(1 for c in calls if c["status"] == 429)
    limited_methods = dict(Counter(c["method"] for c in calls if c["status"] == 429).most_common())
    summary = {
        "incidents_posted": args.incidents, "incidents_opened": incidents, "latency_ms": args.latency_ms,
        "observed_s": args.seconds, "war_rooms_ready": ready,
        "all_ready_after_s": round(all_ready_s, 1) if all_ready_s is not None else None,
        "slack_calls": len(calls), "http_429": too_many, "http_429_by_method": limited_methods,
        "calls_by_method": dict(Counter(c["method"] for c in calls).most_common()),
        "timers_due": len(lateness),
        "timer_lateness_p50_s": round(statistics.median(lateness), 2) if lateness else 0.0,
        "timer_lateness_p99_s": round(percentile(lateness, 0.99), 2) if lateness else 0.0,
        "timer_lateness_max_s": round(max(lateness), 2) if lateness else 0.0,
        # where the late ones are: p99 and count of the kinds with the largest p99
        "timer_lateness_p99_by_kind": {k: {"p99_s": round(percentile(v, 0.99), 1), "n": len(v)} for k, v in sorted(
            by_kind.items(), key=lambda kv: -percentile(kv[1], 0.99))[:12]},
        # The bot's own histogram: due -> its handler started (the lateness above counts until the handler, and
        # the Slack calls it awaited, finished). Bucket bounds: p99 is "at most" the bucket it falls in.
        "timer_start_lateness_count": started_late["count"],
        "timer_start_lateness_p99_at_most_s": bucket_quantile(started_late, 0.99),
        "timer_start_lateness_share_within_2s": round(share_within(started_late, 2.0), 4),
        "timer_start_lateness_by_kind": {k: {"p99_at_most_s": bucket_quantile(h, 0.99), "n": h["count"],
                                             "share_within_2s": round(share_within(h, 2.0), 4)}
                                         for k, h in sorted(started_by_kind.items()) if k != "all"},
        "peak_rss_mb": round(peak_rss, 1), "database": db_url.split(":", 1)[0], "goals": GOALS,
    }
    report("fifty_incidents", summary, [
        f"war rooms ready: {ready}/{args.incidents} (goal all), last after {summary['all_ready_after_s']} s",
        f"Slack 429s: {too_many} of {len(calls)} calls (goal 0)",
        f"timer lateness, due -> handler started: p99 <= {summary['timer_start_lateness_p99_at_most_s']} s over "
        f"{started_late['count']} fired, {100 * summary['timer_start_lateness_share_within_2s']:.1f} % within 2 s "
        f"(goal p99 <= 2 s)",
        f"due -> handler finished (its Slack calls included, paced by Slack's limits; not the goal): p99 "
        f"{summary['timer_lateness_p99_s']} s over {len(lateness)} due timers",
        f"peak RSS of rollbot serve: {summary['peak_rss_mb']} MB (goal <= 150 MB)",
    ], args.out)


if __name__ == "__main__":
    asyncio.run(main())
