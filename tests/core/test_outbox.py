"""The transactional outbox on its own (no Slack): an event is one row per listener written in the change's
transaction, worked at once after the commit, worked by the timer worker when the process died first, worked once
across two workers, never dropped by a rollback-free crash, and a long handler keeps its claim."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from bot.core import events as outbox
from bot.core import timers
from bot.core.clock import FakeClock
from bot.core.events import EventBus
from bot.core.timers import TimerService
from bot.store.db import Database
from bot.store.models import Timer

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def _bus(db: Database, clock: FakeClock, owner: str,
         seen: list[tuple[str, dict[str, Any]]]) -> tuple[EventBus, TimerService]:
    bus = EventBus()
    service = TimerService(db, clock, owner)
    bus.bind(db, clock, service)

    async def first(**kwargs: Any) -> None:
        seen.append(("first", kwargs))

    async def second(**kwargs: Any) -> None:
        seen.append(("second", kwargs))

    bus.on("probe", first, name="test.first")
    bus.on("probe", second, name="test.second")
    return bus, service


async def _rows(db: Database) -> list[Timer]:
    async with db.session() as session:
        return list((await session.exec(select(Timer).where(Timer.kind == outbox.EVENT).order_by(Timer.id))).all())


async def test_an_event_is_a_row_per_listener_in_the_changes_transaction_worked_at_once_and_only_once(
        db: Database) -> None:
    """emit writes one pending row per listener inside the caller's transaction; deliver after the commit runs
    each listener once, in order; emitting the same change again writes and runs nothing."""
    clock, seen = FakeClock(T0), list[tuple[str, dict[str, Any]]]()
    bus, _ = _bus(db, clock, "a", seen)
    async with db.session() as session:
        out = await bus.emit("probe", session, change="c1", n=1)
        assert len(out.keys) == 2
    assert [r.status for r in await _rows(db)] == ["pending", "pending"], "recorded before any work"
    await bus.deliver(out)
    assert seen == [("first", {"n": 1}), ("second", {"n": 1})]
    assert [r.status for r in await _rows(db)] == ["fired", "fired"]
    async with db.session() as session:
        again = await bus.emit("probe", session, change="c1", n=1)
    await bus.deliver(again)
    assert len(seen) == 2 and len(await _rows(db)) == 2, "the same change emitted again does nothing twice"


async def test_rows_of_a_process_that_died_before_delivering_are_worked_by_another_once(db: Database) -> None:
    """The commit happened, the fast path never ran (kill -9): after the grace the other replica's worker runs
    each listener once, however many workers tick together."""
    clock = FakeClock(T0)
    seen_dead: list[tuple[str, dict[str, Any]]] = []
    seen: list[tuple[str, dict[str, Any]]] = []
    dead, _ = _bus(db, clock, "dead", seen_dead)
    async with db.session() as session:
        await dead.emit("probe", session, change="c2", n=2)  # ... and the process dies before deliver
    alive = [_bus(db, clock, f"r{i}", seen)[1] for i in range(2)]
    assert await alive[0].tick() == 0, "not before the fast path's grace"
    clock.advance(outbox.FAST_PATH_GRACE.total_seconds() + 1)
    await asyncio.gather(*(service.tick() for service in alive))
    assert sorted(name for name, _ in seen) == ["first", "second"] and seen_dead == []


async def test_a_failing_listener_is_retried_then_parked_and_retry_puts_it_back(db: Database) -> None:
    """A listener that raises leaves its row pending with backoff; after the last attempt the row is failed
    (parked) and a parked_notice row is written with it; TimerService.retry makes it pending and it runs."""
    clock = FakeClock(T0)
    service = TimerService(db, clock, "r")
    bus = EventBus()
    bus.bind(db, clock, service)
    calls: list[int] = []
    healthy = False

    async def flaky(**_: Any) -> None:
        calls.append(1)
        if not healthy:
            raise TimeoutError("Slack did not answer")

    bus.on("probe", flaky, name="test.flaky")
    await bus.emit("probe", change="c3")
    for _ in range(timers.MAX_ATTEMPTS + 2):
        clock.advance(timers.BACKOFF_CAP_S)
        await service.tick()
    [row] = await _rows(db)
    assert row.status == "failed" and row.attempts == timers.MAX_ATTEMPTS and len(calls) == timers.MAX_ATTEMPTS
    assert await service.parked() == 1
    healthy = True
    assert await service.retry(row.id or 0) is not None
    assert await service.retry(row.id or 0) is None, "retrying twice puts it back once"
    await service.tick()
    [row] = await _rows(db)
    assert row.status == "fired" and len(calls) == timers.MAX_ATTEMPTS + 1 and await service.parked() == 0


async def test_a_long_handler_renews_its_claim_so_a_second_worker_never_takes_it(db: Database) -> None:
    """A handler still running past STALE_CLAIM keeps its lease (renewed while it runs): another worker ticking
    then claims nothing; only a claim whose worker stopped renewing is taken again."""
    clock = FakeClock(T0)
    async with db.session() as session:
        await timers.schedule(session, key="long", kind="long", due_at=T0)
        await timers.schedule(session, key="orphan", kind="orphan", due_at=T0 - timedelta(seconds=1))
    release, started, runs = asyncio.Event(), asyncio.Event(), {"long": 0, "orphan": 0}
    renewed_at: list[datetime] = []
    renewed = asyncio.Event()

    class Observed(TimerService):
        async def renew(self, timer: Timer) -> None:
            await super().renew(timer)
            renewed_at.append(self.clock.now())
            if self.clock.now() > T0 + timers.STALE_CLAIM:
                renewed.set()

    async def long(_: Timer) -> None:
        runs["long"] += 1
        started.set()
        await release.wait()

    async def orphan(_: Timer) -> None:
        runs["orphan"] += 1

    a, b = Observed(db, clock, "a"), TimerService(db, clock, "b")
    a.renew_every_s = 0.01
    for service in (a, b):
        service.on("long", long)
        service.on("orphan", orphan)
    [orphaned] = await a.claim_due(limit=1)  # claimed by a worker that dies before working it
    assert orphaned.key == "orphan"
    working = asyncio.ensure_future(a.tick())  # "long" is still pending: a claims and runs it now
    await started.wait()
    clock.advance(timers.STALE_CLAIM.total_seconds() + 1)
    await renewed.wait()  # a renewal after the clock moved: the claim is fresh again
    assert await b.tick() == 1 and runs == {"long": 1, "orphan": 1}, "b took the orphan, not the live claim"
    release.set()
    assert await working == 1 and runs == {"long": 1, "orphan": 1}


async def test_two_replicas_on_one_database_work_every_outbox_row_exactly_once(db: Database) -> None:
    """Sixty rows (thirty changes, two listeners): one replica delivers a third by its fast path while both
    replicas' workers tick over the rest at the same time (on SQLite and on PostgreSQL): every row once."""
    clock = FakeClock(T0)
    seen: list[tuple[str, dict[str, Any]]] = []
    (bus_a, a), (_, b) = _bus(db, clock, "a", seen), _bus(db, clock, "b", seen)
    outs = []
    for n in range(30):
        async with db.session() as session:
            outs.append(await bus_a.emit("probe", session, change=f"many:{n}", n=n))
    clock.advance(outbox.FAST_PATH_GRACE.total_seconds() + 1)
    await asyncio.gather(bus_a.deliver(*outs[::3]), a.tick(), b.tick(), a.tick(), b.tick())
    assert sorted((name, kw["n"]) for name, kw in seen) == sorted(
        (name, n) for n in range(30) for name in ("first", "second"))
    assert {r.status for r in await _rows(db)} == {"fired"} and len(await _rows(db)) == 60


async def test_an_inline_listener_runs_at_the_emit_in_the_callers_transaction_and_writes_no_row(
        db: Database) -> None:
    """`declared` and `acted` are inline only: their listeners run at the emit, inside the caller's session when it
    has one (what they write commits or rolls back with the change), and leave no outbox row to retry."""
    clock, seen = FakeClock(T0), list[tuple[str, dict[str, Any]]]()
    bus, _ = _bus(db, clock, "a", seen)

    async def promise(session: Any, incident: str) -> None:
        await timers.schedule(session, key=f"{incident}:promise", kind="promise", due_at=T0)

    async def acted(**kwargs: Any) -> None:
        seen.append(("acted", kwargs))

    bus.on("declared", promise, name="test.promise", inline=True)
    bus.on("acted", acted, name="test.acted", inline=True)
    try:
        async with db.session() as session:
            await bus.emit("declared", session, incident="inc-1")
            raise RuntimeError("the declaration fails after its listeners ran")
    except RuntimeError:
        pass
    async with db.session() as session:
        await bus.emit("declared", session, incident="inc-2")
    await bus.emit("acted", incident_id="inc-2", user="U1", interaction="step_tick")
    async with db.session() as session:
        keys = (await session.exec(select(Timer.key))).all()
    assert keys == ["inc-2:promise"], "the failed declaration's promise rolled back with it; no event rows"
    assert seen == [("acted", {"incident_id": "inc-2", "user": "U1", "interaction": "step_tick"})]


def test_an_inline_only_event_refuses_a_durable_listener() -> None:
    async def listener(**_: Any) -> None: ...

    bus = EventBus()
    for event in ("declared", "acted"):
        try:
            bus.on(event, listener, name="test.durable")
        except ValueError as exc:
            assert "inline only" in str(exc)
        else:
            raise AssertionError(f"{event} took a durable listener")
