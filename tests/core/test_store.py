"""The store: migrations reach head on both back ends, and the constraints that make effects exactly-once hold."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, select

from bot.core import timers
from bot.core.clock import FakeClock
from bot.core.timers import TimerService
from bot.store.db import Database, alembic_config
from bot.store.models import Incident, Timer

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def _incident(**kw: object) -> Incident:
    values: dict[str, object] = {"id": "inc-1", "title": "t", "runbook": "rb", "level": "immediate",
                                 "declared_by": "U1", "declared_at": T0}
    values.update(kw)
    return Incident(**values)  # type: ignore[arg-type]


async def test_upgrade_creates_every_table_at_head(db: Database) -> None:
    """An empty database upgraded by Alembic has every model table and the head revision."""
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
    assert set(SQLModel.metadata.tables) <= tables
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert version == head


async def test_upgrade_twice_is_a_no_op(db: Database) -> None:
    await db.upgrade()
    async with db.session() as session:
        session.add(_incident())
    await db.upgrade()
    async with db.session() as session:
        assert (await session.get(Incident, "inc-1")) is not None


async def test_timestamps_come_back_timezone_aware(db: Database) -> None:
    async with db.session() as session:
        session.add(_incident())
    async with db.session() as session:
        row = await session.get(Incident, "inc-1")
    assert row is not None and row.declared_at == T0 and row.declared_at.tzinfo is not None


async def test_one_open_incident_per_dedup_key(db: Database) -> None:
    """The unique dedup key refuses a second open incident for the same trigger; NULL keys never collide."""
    async with db.session() as session:
        session.add(_incident(id="a", dedup_key="trigger:payment"))
        session.add(_incident(id="b"))
        session.add(_incident(id="c"))
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            session.add(_incident(id="d", dedup_key="trigger:payment"))


async def test_each_due_timer_fires_exactly_once_across_two_processes(db: Database) -> None:
    """Two timer services on one database (two replicas, or a restart) tick together: each timer fires once."""
    clock = FakeClock(T0)
    async with db.session() as session:
        for i in range(20):
            await timers.schedule(session, key=f"k{i}", kind="probe", due_at=T0 + timedelta(seconds=i))
        await timers.schedule(session, key="k0", kind="probe", due_at=T0)  # a duplicate schedule is ignored
    fired: list[str] = []

    async def handler(timer: Timer) -> None:
        fired.append(timer.key)

    a, b = TimerService(db, clock, "replica-a"), TimerService(db, clock, "replica-b")
    a.on("probe", handler)
    b.on("probe", handler)
    clock.advance(9.5)
    await asyncio.gather(a.tick(), b.tick(), a.tick())
    assert sorted(fired) == sorted(f"k{i}" for i in range(10))
    clock.advance(60)
    restarted = TimerService(db, clock, "replica-c")
    restarted.on("probe", handler)
    await asyncio.gather(a.tick(), restarted.tick())
    assert sorted(fired) == sorted(f"k{i}" for i in range(20))
    assert await a.tick() == 0 and await restarted.tick() == 0
    async with db.session() as session:
        statuses = set((await session.exec(select(Timer.status))).all())
    assert statuses == {"fired"}


async def test_a_failing_timer_handler_is_retried_with_backoff_not_marked_fired(db: Database) -> None:
    """A handler that raises (Slack down, a network timeout) leaves its timer pending for a later attempt; it
    fires once the handler succeeds, and is marked failed (and counted) only after the last attempt."""
    from bot.core.metrics import Metrics

    clock = FakeClock(T0)
    async with db.session() as session:
        await timers.schedule(session, key="flaky", kind="flaky", due_at=T0)
        await timers.schedule(session, key="broken", kind="broken", due_at=T0)
    calls = {"flaky": 0, "broken": 0}

    async def flaky(timer: Timer) -> None:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise TimeoutError("Slack did not answer")

    async def broken(timer: Timer) -> None:
        calls["broken"] += 1
        raise RuntimeError("always")

    service = TimerService(db, clock, "r")
    service.metrics = Metrics()
    service.on("flaky", flaky)
    service.on("broken", broken)
    assert await service.tick() == 0, "both failed on their first attempt"
    assert await service.tick() == 0 and calls == {"flaky": 1, "broken": 1}, "not again before the backoff"
    for _ in range(12):
        clock.advance(timers.BACKOFF_CAP_S)
        await service.tick()
    assert calls["flaky"] == 3 and calls["broken"] == timers.MAX_ATTEMPTS
    async with db.session() as session:
        rows = {t.key: t for t in (await session.exec(select(Timer))).all()}
    assert rows["flaky"].status == "fired" and rows["flaky"].attempts == 2
    assert rows["broken"].status == "failed" and rows["broken"].last_error == "always"
    metrics = service.metrics.render().decode()
    assert 'rollbot_timer_failures_total{kind="broken"} 1.0' in metrics
    assert 'rollbot_timer_retries_total{kind="flaky"} 2.0' in metrics


async def test_a_large_due_backlog_is_claimed_in_small_chunks(db: Database) -> None:
    """A backlog of due timers is claimed a batch at a time, never more than there are free handler slots, so no
    claim waits unworked while hundreds of handlers run (a claim that outlasts STALE_CLAIM would be taken again
    elsewhere)."""
    clock = FakeClock(T0)
    total = timers.CHUNK * 3 + 5
    async with db.session() as session:
        for i in range(total):
            await timers.schedule(session, key=f"b{i}", kind="probe", due_at=T0)
    claimed_at_fire: list[int] = []
    service = TimerService(db, clock, "r", parallel=timers.CHUNK * 2)  # fewer slots than the backlog

    async def handler(timer: Timer) -> None:
        async with db.session() as session:
            claimed = (await session.exec(select(Timer).where(Timer.status == "claimed"))).all()
        claimed_at_fire.append(len(claimed))

    service.on("probe", handler)
    assert await service.tick() == total
    assert max(claimed_at_fire) <= service.parallel < total, "never more claimed at once than run side by side"


async def test_cancelled_timers_never_fire(db: Database) -> None:
    clock = FakeClock(T0)
    async with db.session() as session:
        session.add(_incident())
        await session.flush()
        await timers.schedule(session, key="x", kind="probe", due_at=T0, incident_id="inc-1")
    async with db.session() as session:
        assert await timers.cancel(session, "inc-1") == 1
    service = TimerService(db, clock, "r")
    service.on("probe", lambda t: pytest.fail("a cancelled timer fired"))  # type: ignore[arg-type,return-value]
    clock.advance(5)
    assert await service.tick() == 0


async def test_migrations_match_the_models(tmp_path: object) -> None:
    """Alembic finds nothing to autogenerate: every model change has its migration."""
    from alembic import command

    from bot.store.db import alembic_config

    database = Database(f"sqlite:///{tmp_path}/check.db")
    await database.upgrade()
    await asyncio.to_thread(command.check, alembic_config(database.url))
    await database.dispose()
