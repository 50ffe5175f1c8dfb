"""Two `rollbot serve` processes on one PostgreSQL database and one Redis, the sandbox delivering Slack's requests
to both in turn: one channel, one decision, one run of the action, one page per responder, every outbox row
worked once by one of them; a replica killed (SIGKILL) while its action runs leaves the execution marked
interrupted by the other, nothing lost."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlmodel import func, select

from bot.runbook.loader import DEFAULT_RUNBOOK
from bot.sandbox.server import SandboxServer
from bot.slack.gateway import META_TYPE
from bot.store.db import Database
from bot.store.models import Execution, Incident, Page, TimelineEvent, Timer, Vote
from tests.incidents.test_war_room import PAYMENT_ALERT
from tests.support.services import require_postgres, require_redis

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_DRAINS: set[asyncio.Task[None]] = set()


async def _serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot.cli.main", "serve", env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    assert process.stdout is not None
    seen = b""
    while b"listening" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 60)
        assert line, seen[-2000:]
        seen += line
    # Keep reading what it logs: a full pipe would block the process on its next log line.
    drain = asyncio.create_task(_drain(process.stdout))
    _DRAINS.add(drain)
    drain.add_done_callback(_DRAINS.discard)
    return process


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def _until(check: Any, what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def ladder_in_seconds(tmp_path: Path, levels: tuple[int, ...] = (1, 2, 3, 4)) -> Path:
    """The default runbook with these levels of its management ladder in seconds instead of minutes, so they run
    in a test of real processes."""
    runbook = tmp_path / "runbook.yml"
    examples = DEFAULT_RUNBOOK.parent.parent / "examples"
    text = DEFAULT_RUNBOOK.read_text().replace("scripts_dir: ../examples", f"scripts_dir: {examples}")
    runbook.write_text(re.sub(r"(\{level: (\d), role: [a-z_]+, minutes: )(\d+)\}",
                              lambda m: f"{m.group(1)}{int(m.group(3)) / 60:.3f}}}" if int(m.group(2)) in levels
                              else m.group(0), text))
    return runbook


async def test_two_replicas_share_one_incident_and_take_over_an_interrupted_action(tmp_path: Path) -> None:
    pg_url, redis_url = require_postgres(), require_redis()
    name = f"rb_two_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await admin.execute(f"CREATE DATABASE {name}")
    db_url = pg_url.rsplit("/", 1)[0] + f"/{name}"
    runbook = ladder_in_seconds(tmp_path)  # the whole ladder runs here
    sb = SandboxServer(limits=False)
    await sb.start()
    ports = [_port(), _port()]
    base = os.environ | {
        "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret, "SLACK_API_URL": sb.api_url,
        "DATABASE_URL": db_url, "REDIS_URL": redis_url, "ROLLBOT_ALERT_TOKEN": "two", "ROLLBOT_TICK_SECONDS": "0.5",
        "ROLLBOT_HANG": "emergency-db-snapshot.sh", "ROLLBOT_SCRIPT_SPEED": "50", "ROLLBOT_RUNBOOK": str(runbook)}
    replicas: dict[str, asyncio.subprocess.Process] = {}
    db = Database(db_url)
    try:
        for rid, port in zip("AB", ports, strict=True):
            replicas[rid] = await _serve(base | {"PORT": str(port), "ROLLBOT_REPLICA_ID": rid})
        sb.app_url = ",".join(f"http://127.0.0.1:{p}/slack/events" for p in ports)
        async with aiohttp.ClientSession() as http:
            for port in ports:  # the same alert reaches both replicas (two Alertmanagers, or a retry)
                async with http.post(f"http://127.0.0.1:{port}/alerts/alertmanager", json=PAYMENT_ALERT,
                                     headers={"Authorization": "Bearer two"}) as r:
                    assert r.status == 202

        async def ready() -> Incident | None:
            async with db.session() as s:
                rows = (await s.exec(select(Incident))).all()
            assert len(rows) <= 1
            return rows[0] if rows and rows[0].data.get("war_room_ready") else None

        incident = await _until(ready, "the war room")
        channel = sb.ws.channels[incident.channel_id]

        def message(prefix: str) -> Any:
            return next(m for m in channel.messages if m.text.startswith(prefix))

        await _until(lambda: asyncio.sleep(0, result=any(m.text.startswith("Rollback decision") for m in channel.messages)),
                     "the decision message")

        async def health_checked() -> bool:  # the automatic health check, done before anything can cancel it
            async with db.session() as s:
                return bool((await s.exec(select(Execution).where(Execution.action_id == "quick_health_check",
                                                                  Execution.state == "succeeded"))).first())

        await _until(health_checked, "the automatic health check")
        for _ in range(2):  # a double click, delivered to each replica in turn
            await sb.click("U100TL01", channel.id, message("Rollback decision").ts, text="Approve rollback")
        await sb.click("U500OC01", channel.id, message("Step 1:").ts, action_id="step_done",
                       value="incident_detection")

        async def phase2() -> bool:
            return any(m.text.startswith("Step 3:") for m in channel.messages)

        await _until(phase2, "Phase 2")
        step3 = message("Step 3:")
        button = next(e for b in step3.blocks or [] for e in b.get("elements") or []
                      if isinstance(e, dict) and str(e.get("action_id", "")).startswith("run_action|"))
        for _ in range(2):  # Run clicked twice
            await sb.click("U200DO01", channel.id, step3.ts, action_id=button["action_id"], value=button["value"])
        view = await _until(lambda: asyncio.sleep(0, result=next(
            (v for v in sb.ws.views.get("U200DO01", []) if v.get("callback_id") == "run_action"), None)), "the Run modal")
        await sb.submit("U200DO01", view["id"], {})

        async def running() -> Execution | None:
            async with db.session() as s:
                rows = (await s.exec(select(Execution).where(Execution.state == "running"))).all()
            return rows[0] if rows else None

        execution = await _until(running, "the snapshot to run")
        owner = execution.lease_owner or ""
        replicas[owner].send_signal(signal.SIGKILL)
        await replicas[owner].wait()
        survivor = "B" if owner == "A" else "A"
        sb.app_url = f"http://127.0.0.1:{ports['AB'.index(survivor)]}/slack/events"  # the load balancer drops it

        async def interrupted() -> Execution | None:
            async with db.session() as s:
                row = await s.get(Execution, execution.id)
            return row if row is not None and row.state == "interrupted" else None

        row = await _until(interrupted, "the other replica to mark the execution interrupted", 90)
        answer = await sb.command("U100TL01", channel.id, "/rollback", 'resolve --override "drill of the takeover"')
        assert answer["status"] == 200

        async def resolved() -> bool:
            async with db.session() as s:
                got = await s.get(Incident, incident.id)
            return got is not None and got.status == "resolved"

        await _until(resolved, "the resolution")
        assert row.lease_owner != owner or row.detail

        async def outbox_worked() -> list[Timer] | None:
            async with db.session() as s:
                rows = list((await s.exec(select(Timer).where(Timer.kind == "event"))).all())
            # A row the killed replica held waits out its lease (STALE_CLAIM) for the survivor: not waited for here.
            left = [r for r in rows if r.status != "fired" and not (
                r.status == "claimed" and (r.claimed_by or "").startswith(f"{owner}:"))]
            return rows if rows and not left else None

        outbox = await _until(outbox_worked, "every outbox row worked")
        # Each row is marked done by the one claim that worked it (a conditional UPDATE on its claim token), and
        # what the rows did is in Slack once: no keyed message, page or DM of the two replicas posted twice.
        workers = {(r.claimed_by or "").split(":")[0] for r in outbox if r.status == "fired"}
        # (Which replica works a row is a race: the fast path of the one that made the change, or either's worker.)
        assert workers and workers <= {"A", "B"}, workers
        keys = [str(m.metadata["event_payload"]["key"]) for c in sb.ws.channels.values() for m in c.messages
                if m.metadata and m.metadata.get("event_type") == META_TYPE]
        assert keys and len(keys) == len(set(keys)), "nothing the outbox owed was done twice"
        async with db.session() as s:
            incidents = (await s.exec(select(func.count()).select_from(Incident))).one()
            votes = (await s.exec(select(Vote))).all()
            executions = (await s.exec(select(Execution))).all()
            pages = (await s.exec(select(Page.user_id, Page.role, Page.tier))).all()
            kinds = {e.kind for e in (await s.exec(select(TimelineEvent))).all()}
        assert incidents == 1 and len([c for c in sb.ws.channels.values() if c.name.startswith("inc-")]) == 1
        assert [v.user_id for v in votes] == ["U100TL01"]
        by_action = sorted(e.action_id for e in executions)
        # The snapshot ran once for two Run clicks on two replicas; the automatic health check once too.
        assert by_action == ["emergency_db_snapshot", "quick_health_check"], by_action
        assert len(pages) == len(set(pages))
        paged = [c.im_user for c in sb.ws.channels.values() if c.is_im for m in c.messages if m.text.startswith("Page for")]
        assert paged and len(paged) == len(set(paged)), "one page per responder"
        told = [c.im_user for c in sb.ws.channels.values() if c.is_im for m in c.messages if m.text.startswith("Escalation")]
        assert sorted(told) == sorted(["U700PM01", "U700PM02", "U800CT01", "U810CE01", "U820BD01", "U820BD02"]), \
            "each rung of the ladder told each of its people once, across two replicas and a crash"
        assert {"declared", "alert_received", "war_room_ready", "channel_created", "step_done"} <= kinds
        assert "alert_added" not in kinds, "the same alert at both replicas is one alert, its repeat silent"
        async with aiohttp.ClientSession() as http, http.get(
                f"http://127.0.0.1:{ports['AB'.index(survivor)]}/metrics") as r:
            metrics = await r.text()
        assert 'rollbot_executions{state="interrupted"} 1.0' in metrics
    finally:
        for process in replicas.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 15)
                except TimeoutError:
                    process.kill()
        await db.dispose()
        await sb.stop()
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.close()
