"""kill -9 of `rollbot serve` at the boundaries where an alert's war room used to be lost for good: right after
the alert was answered 202, after the incident channel was created, after the invites, after Slack posted the
header but its answer was lost, and between two pages; and at the boundaries of the work a ready war room owes:
between two DMs of an escalation level, while an automatic action runs, while Slack posts a comms draft (its
answer lost). A restarted process (same database) finishes the war room, asserted from the sandbox's state alone:
one channel, every responder in it and paged once, one pinned header, Phase 1 posted once, each ladder DM sent
once, each draft posted once, the interrupted action finished once (never re-run) and its result shown once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from sqlmodel import select

from bot.sandbox.faults import LOST_TIMEOUT
from bot.sandbox.server import SandboxServer
from bot.slack.gateway import META_TYPE
from bot.store.db import Database
from bot.store.models import CommsDraft, Execution, Incident, Page, SlackMessage, Timer
from tests.incidents.test_war_room import PAYMENT_ALERT
from tests.production.test_two_replicas import _port, _serve, _until, ladder_in_seconds
from tests.support.services import require_postgres

pytestmark = pytest.mark.slow
# The first process is held at the boundary: the sandbox leaves these calls hanging (unapplied) until the kill,
# so the kill lands exactly there however fast or slow the machine is. (method, calls let through first, status)
HANG = 0
CHANNEL_CALLS = ["conversations.setTopic", "conversations.setPurpose", "chat.postMessage", "pins.add",
                 "conversations.list"]
HELD_AFTER: dict[str, list[tuple[str, int, int]]] = {
    "answered": [("conversations.create", 0, HANG)],
    "channel_created": [(m, 0, HANG) for m in ["conversations.invite", *CHANNEL_CALLS, "users.info"]],
    "invited": [(m, 0, HANG) for m in CHANNEL_CALLS],
    # Slack posts the header (and anything else posted meanwhile) but the answer never comes back: the restarted
    # process must find the header by its metadata, not post a second one.
    "header_answer_lost": [("chat.postMessage", 0, LOST_TIMEOUT), ("pins.add", 0, HANG)],
    # The war room is up and the first page's DM went; the other DMs hang.
    "mid_pages": [("conversations.open", 1, HANG)],
}


def _ladder_dm(args: dict[str, Any]) -> bool:
    return str(args.get("text") or "").startswith("Escalation")


def _comms_draft(args: dict[str, Any]) -> bool:
    return ":comms:" in str(((args.get("metadata") or {}).get("event_payload") or {}).get("key") or "")


# Held by what the call carries: (method, matching calls let through first, status, which calls).
HELD_WHEN: dict[str, list[tuple[str, int, int, Callable[[dict[str, Any]], bool]]]] = {
    # The first escalation level's first DM goes, the second hangs (the ladder's level 1 comes 5 s in).
    "mid_ladder": [("chat.postMessage", 1, HANG, _ladder_dm)],
    # Slack posts the comms drafts but their answers never come back: found after the restart, not posted again.
    "mid_comms": [("chat.postMessage", 0, LOST_TIMEOUT, _comms_draft)],
}
# The automatic health check hangs in the first process (its script's knob), not in the restarted one: run again,
# it would finish, so a second run would show.
HANG_SCRIPT = "quick-health-check"
# Boundaries past the war room. The restarted process keeps its replica id (a pod restarted under its name), so it
# takes back at once what its previous life had claimed (timers, a running action) instead of waiting out leases.
AFTER_READY = ("mid_ladder", "mid_action", "mid_comms")


def _reached(sb: SandboxServer, boundary: str) -> bool:
    """The first process got to the boundary (seen in the sandbox only)."""
    rooms = [c for c in sb.ws.channels.values() if c.name.startswith("inc-")]
    if boundary == "answered":
        return True
    if boundary == "channel_created":
        return bool(rooms)
    if boundary == "invited":
        return bool(rooms) and len(rooms[0].members) > 1
    if boundary == "header_answer_lost":
        return bool(rooms) and any(m.text.startswith("Rollback incident") for m in rooms[0].messages)
    if boundary == "mid_ladder":
        return any(_ladder_dm({"text": m.text}) for c in sb.ws.channels.values() if c.is_im for m in c.messages)
    if boundary == "mid_comms":
        return bool(rooms) and any(m.metadata and _comms_draft({"metadata": m.metadata}) for m in rooms[0].messages)
    if boundary == "mid_action":
        return True  # seen in the database: the action running (below)
    return any(c.is_im and any(m.text.startswith("Page for") for m in c.messages) for c in sb.ws.channels.values())


def _env(sb: SandboxServer, db_url: str, port: int) -> dict[str, str]:
    """A `rollbot serve` of its own against this sandbox and database, without Redis (one replica at a time)."""
    env = os.environ | {
        "SLACK_BOT_TOKEN": sb.bot_token, "SLACK_SIGNING_SECRET": sb.signing_secret, "SLACK_API_URL": sb.api_url,
        "DATABASE_URL": db_url, "ROLLBOT_ALERT_TOKEN": "crash", "ROLLBOT_TICK_SECONDS": "0.5", "PORT": str(port),
        "ROLLBOT_POST_CLAIM_STALE_SECONDS": "5"}
    env.pop("REDIS_URL", None)
    sb.app_url = f"http://127.0.0.1:{port}/slack/events"
    return env


async def _post_alert(port: int) -> None:
    async with aiohttp.ClientSession() as http, http.post(
            f"http://127.0.0.1:{port}/alerts/alertmanager", json=PAYMENT_ALERT,
            headers={"Authorization": "Bearer crash"}) as r:
        assert r.status == 202


async def _stop(process: asyncio.subprocess.Process, db: Database, sb: SandboxServer) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        await process.wait()
    await db.dispose()
    await sb.stop()


async def _database(backend: str, tmp_path: Path) -> tuple[str, Any]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'crash.db'}", None
    url = require_postgres()
    name = f"rb_crash_{secrets.token_hex(4)}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/test")
    await admin.execute(f"CREATE DATABASE {name}")
    return url.rsplit("/", 1)[0] + f"/{name}", (admin, name)


SQLITE_BOUNDARIES = ["answered", "channel_created", "invited", "header_answer_lost", "mid_pages", "mid_ladder",
                     "mid_action", "mid_comms"]
POSTGRES_BOUNDARIES = ["answered", "mid_pages", "mid_action"]
# The cases are real processes that mostly wait (on Slack held at a boundary, then on the restarted process's
# durable promises coming due), so they run side by side, a few at a time, each on its own sandbox and database.
AT_ONCE = 5


async def _each_boundary(tmp_path: Path, backend: str, boundaries: list[str]) -> None:
    """Every boundary's case, side by side; a failure names its boundary."""
    limit = asyncio.Semaphore(AT_ONCE)

    async def case(boundary: str) -> None:
        async with limit:
            (tmp_path / boundary).mkdir()
            await _kill_at_boundary_then_restart(tmp_path / boundary, backend, boundary)

    results = await asyncio.gather(*(case(b) for b in boundaries), return_exceptions=True)
    failed = {b: r for b, r in zip(boundaries, results, strict=True) if isinstance(r, BaseException)}
    assert not failed, "\n".join(f"{b}: {type(e).__name__}: {e}" for b, e in failed.items())


async def test_a_war_room_interrupted_by_kill_9_at_each_boundary_is_finished_after_a_restart_sqlite(
        tmp_path: Path) -> None:
    await _each_boundary(tmp_path, "sqlite", SQLITE_BOUNDARIES)


@pytest.mark.postgres
async def test_a_war_room_interrupted_by_kill_9_at_each_boundary_is_finished_after_a_restart_postgres(
        tmp_path: Path) -> None:
    require_postgres()
    await _each_boundary(tmp_path, "postgres", POSTGRES_BOUNDARIES)


async def _kill_at_boundary_then_restart(tmp_path: Path, backend: str, boundary: str) -> None:
    db_url, cleanup = await _database(backend, tmp_path)
    sb = SandboxServer(limits=False)
    await sb.start()
    port = _port()
    env = _env(sb, db_url, port)
    if boundary in AFTER_READY:
        env["ROLLBOT_REPLICA_ID"] = f"crash-{boundary}"
    if boundary == "mid_ladder":
        env["ROLLBOT_RUNBOOK"] = str(ladder_in_seconds(tmp_path, levels=(1,)))
    db = Database(db_url)
    process = await _serve(env | ({"ROLLBOT_HANG": HANG_SCRIPT} if boundary == "mid_action" else {}))
    scripts: list[int] = []
    try:
        sb.faults.configure(hang_s=600)
        for method, after, status in HELD_AFTER.get(boundary, []):
            sb.faults.fail_next(method, 1000, status=status, after=after)
        for method, after, status, when in HELD_WHEN.get(boundary, []):
            sb.faults.fail_next(method, 1000, status=status, after=after, when=when)
        await _post_alert(port)
        await _until(lambda: asyncio.sleep(0, result=_reached(sb, boundary)), f"the boundary {boundary}", seconds=60)
        if boundary == "mid_action":  # running, its script started (a child of the bot, in its own group)
            await _until(lambda: _action_running(db, process.pid, scripts), "the automatic action running", 60)
        if boundary == "mid_ladder":  # both of the level's pages are written before either DM goes

            async def level_recorded() -> bool:
                return len(await _pages(db, "management")) > 1

            await _until(level_recorded, "the escalation level's pages recorded", seconds=60)
        if boundary == "mid_pages":  # roles are paged in turn: the next role's Page row is written before its DM

            async def next_page_recorded() -> bool:
                async with db.session() as session:
                    return len((await session.exec(select(Page))).all()) > 1

            await _until(next_page_recorded, "the next page recorded, its DM held", seconds=60)
        process.send_signal(signal.SIGKILL)
        await process.wait()
        for pid in scripts:  # the hung script outlives the bot it belonged to: gone with it, as with its host
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        async with db.session() as session:
            incident = (await session.exec(select(Incident))).one()
            paged_before = (await session.exec(select(Page).where(Page.incident_id == incident.id))).all()
        if boundary in AFTER_READY:
            await _assert_landed(sb, db, boundary)
        elif boundary == "mid_pages":
            # One DM is in Slack (its ts may not have reached the database: a lost answer), the others hang.
            assert incident.data.get("war_room_ready") and len(paged_before) > 1 \
                and not all(p.ts for p in paged_before), "the kill landed between two pages"
        else:
            assert not incident.data.get("war_room_ready"), "the kill landed before the war room was ready"

        sb.faults.clear()
        process = await _serve(env)  # the restart: nothing but the database carries over

        await _assert_finished(sb, db, incident.id)
        if boundary == "mid_action":
            await _assert_action_finished_once(sb, db, incident.id)
        if boundary == "mid_comms":
            await _assert_drafts_posted_once(sb, db, incident.id)
    finally:
        for pid in scripts:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        await _stop(process, db, sb)
        if cleanup is not None:
            admin, name = cleanup
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            await admin.close()


async def _pages(db: Database, tier: str) -> list[Page]:
    async with db.session() as session:
        return list((await session.exec(select(Page).where(Page.tier == tier))).all())


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for t in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{t}/children").read().split()]  # noqa: SIM115
    except OSError:
        return []


async def _action_running(db: Database, bot_pid: int, scripts: list[int]) -> bool:
    async with db.session() as session:
        running = (await session.exec(select(Execution).where(Execution.state == "running"))).all()
    scripts[:] = _children(bot_pid)
    return bool(running) and bool(scripts)


async def _assert_landed(sb: SandboxServer, db: Database, boundary: str) -> None:
    """The kill landed at the boundary: the work it interrupts is owed, not done (seen before the restart)."""
    async with db.session() as session:
        incident = (await session.exec(select(Incident))).one()
        refs = {m.key for m in (await session.exec(select(SlackMessage))).all()}
        running = (await session.exec(select(Execution).where(Execution.state == "running"))).all()
    assert incident.data.get("war_room_ready"), "past the war room"
    ims = [m for c in sb.ws.channels.values() if c.is_im for m in c.messages]
    if boundary == "mid_ladder":
        level = await _pages(db, "management")
        assert sum(_ladder_dm({"text": m.text}) for m in ims) == 1 and len(level) > 1 and \
            not all(p.ts for p in level), "killed between two DMs of the level"
    if boundary == "mid_action":
        assert [e.action_id for e in running] == ["quick_health_check"], "killed while the action ran"
    if boundary == "mid_comms":
        posted = [m for c in sb.ws.channels.values() for m in c.messages if m.metadata and
                  _comms_draft({"metadata": m.metadata})]
        assert posted and not any(k.startswith("comms:") for k in refs), "killed while a draft's post was unanswered"


async def _assert_action_finished_once(sb: SandboxServer, db: Database, incident_id: str) -> None:
    """The automatic action killed mid-run: finished once, as interrupted (never re-run by itself, Retry is a
    person's), its message shows it once, and the work its end owes was done once."""
    async def finished() -> list[Execution] | None:
        async with db.session() as session:
            rows = list((await session.exec(select(Execution).where(Execution.incident_id == incident_id))).all())
            owed = (await session.exec(select(Timer).where(Timer.kind == "event",
                                                           Timer.key.contains("execution_finished")))).all()  # type: ignore[attr-defined]
        return rows if rows and all(r.state != "running" for r in rows) and owed and \
            all(t.status == "fired" for t in owed) else None

    rows = await _until(finished, "the interrupted action finished", seconds=60)
    assert [(r.action_id, r.state) for r in rows] == [("quick_health_check", "interrupted")], \
        [(r.action_id, r.state) for r in rows]
    key = f"{incident_id}:execution:{rows[0].id}"
    shown = [m for c in sb.ws.channels.values() for m in c.messages
             if m.metadata and m.metadata["event_payload"]["key"] == key]
    assert len(shown) == 1 and "interrupted" in shown[0].text.lower(), [m.text for m in shown]


async def _assert_drafts_posted_once(sb: SandboxServer, db: Database, incident_id: str) -> None:
    """Each draft whose post was in flight at the kill: found by its key after the restart, posted once."""
    async def recorded() -> list[CommsDraft] | None:
        async with db.session() as session:
            drafts = list((await session.exec(select(CommsDraft).where(CommsDraft.incident_id == incident_id))).all())
            refs = {m.key for m in (await session.exec(select(SlackMessage))).all()}
        return drafts if drafts and all(f"comms:{d.template_id}" in refs for d in drafts) else None

    drafts = await _until(recorded, "every draft's post recorded", seconds=60)
    keys = [str(m.metadata["event_payload"]["key"]) for c in sb.ws.channels.values() for m in c.messages
            if m.metadata and m.metadata.get("event_type") == META_TYPE]
    for draft in drafts:
        assert keys.count(f"{incident_id}:comms:{draft.template_id}") == 1, draft.template_id


async def _assert_finished(sb: SandboxServer, db: Database, incident_id: str) -> None:
    """Wait for the restarted process to finish the war room, then check it from the sandbox's state alone."""
    async def ready() -> tuple[Incident, list[Page]] | None:
        # Every page recorded so far has gone. The checks below are of this one reading: on a slow machine more
        # pages can come meanwhile (an overdue decision pages the leads' secondaries), their DMs still on the way.
        async with db.session() as session:
            row = await session.get(Incident, incident_id)
            pages = list((await session.exec(select(Page).where(Page.incident_id == incident_id))).all())
        if row is None or not row.data.get("war_room_ready") or not pages or not all(p.ts for p in pages):
            return None
        return row, pages

    incident, pages = await _until(ready, "the war room, finished by the restarted process", seconds=240)
    channels = [c for c in sb.ws.channels.values() if c.name.startswith("inc-")]
    assert [c.id for c in channels] == [incident.channel_id], "exactly one channel, the incident's"
    channel = channels[0]
    assert {p.user_id for p in pages if p.tier != "management"} <= set(channel.members), \
        "every paged responder is in the channel"
    headers = [m for m in channel.messages if m.text.startswith("Rollback incident") and not m.thread_ts]
    assert len(headers) == 1 and channel.pins == [headers[0].ts], "one header, pinned"
    for title in ("Step 1: Incident Detection and Alert", "Step 2: Rollback Decision"):
        assert sum(title in m.text for m in channel.messages if not m.thread_ts) == 1, title
    for page in pages:  # responders paged and management told by the ladder: each DM sent once, by its key
        dm = sb.ws.channels[page.channel or ""]
        assert dm.is_im and dm.im_user == page.user_id, f"{page.user_id}'s page went to their DM"
        sent = [m for m in dm.messages if m.metadata and m.metadata["event_payload"]["key"] == f"dm:page:{page.id}"]
        assert len(sent) == 1, f"{page.user_id} paged once as {page.role}"
    keys = [str(m.metadata["event_payload"]["key"]) for c in sb.ws.channels.values() for m in c.messages
            if m.metadata and m.metadata.get("event_type") == META_TYPE]
    assert keys and len(keys) == len(set(keys)), "no keyed message (steps, drafts, pages) posted twice"


ROUNDS = int(os.environ.get("ROLLBOT_CRASH_ROUNDS", "5"))  # the issue asks for 20; a round costs about 5 s


async def test_kill_9_at_a_random_moment_always_ends_complete(tmp_path: Path) -> None:
    """ROLLBOT_CRASH_ROUNDS rounds (5 by default, to keep CI short; ROLLBOT_CRASH_SEED picks the moments): an
    alert answered 202, then kill -9 at a random moment of the next 3 s (the randomness is the point: it picks the
    boundary, nothing is asserted about timing), a restart, and every round ends complete."""
    rng = random.Random(int(os.environ.get("ROLLBOT_CRASH_SEED", "14")))
    moments = [rng.uniform(0, 3) for _ in range(ROUNDS)]
    limit = asyncio.Semaphore(AT_ONCE)

    async def round_(n: int) -> None:
        async with limit:
            await _kill_at_a_moment_then_restart(tmp_path, n, moments[n])

    results = await asyncio.gather(*(round_(n) for n in range(ROUNDS)), return_exceptions=True)
    complete = sum(not isinstance(r, BaseException) for r in results)
    failures = [f"round {n} (kill at {moments[n]:.2f} s): {r!r}" for n, r in enumerate(results)
                if isinstance(r, BaseException)]
    print(f"{complete}/{ROUNDS} rounds ended complete")
    assert complete == ROUNDS, "\n".join(failures)


async def _kill_at_a_moment_then_restart(tmp_path: Path, n: int, moment: float) -> None:
    sb = SandboxServer(limits=False)
    await sb.start()
    port = _port()
    db_url = f"sqlite:///{tmp_path / f'round{n}.db'}"
    env = _env(sb, db_url, port)
    db = Database(db_url)
    process = await _serve(env)
    try:
        await _post_alert(port)
        await asyncio.sleep(moment)  # the random kill moment
        process.send_signal(signal.SIGKILL)
        await process.wait()
        async with db.session() as session:
            incident = (await session.exec(select(Incident))).one()
        process = await _serve(env)
        await _assert_finished(sb, db, incident.id)
    finally:
        await _stop(process, db, sb)
