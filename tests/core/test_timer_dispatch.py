"""Timers fire in lanes, side by side: a handler waiting on Slack (here, on an asyncio.Event) holds only its own
lane (one incident's timers of one kind, or one listener's outbox rows), never another incident's timers nor its
own incident's other kinds. Nothing is timed: the clock is a FakeClock and every wait is on a condition."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlmodel import select

from bot.core import timers
from bot.core.clock import FakeClock
from bot.core.timers import TimerService
from bot.store.db import Database
from bot.store.models import Incident, Timer

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _incidents(db: Database, *ids: str) -> None:
    async with db.session() as session:
        for incident_id in ids:
            session.add(Incident(id=incident_id, title="t", runbook="rb", level="immediate", declared_by="U1",
                                 declared_at=T0))


async def _until(event: asyncio.Event, what: str) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout=30)  # generous: a condition, not a speed
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


class Log:
    """Keys appended as handlers run; `reached(n)` is set once n are in."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._waits: dict[int, asyncio.Event] = {}

    def add(self, key: str) -> None:
        self.keys.append(key)
        for n, event in self._waits.items():
            if len(self.keys) >= n:
                event.set()

    def reached(self, n: int) -> asyncio.Event:
        event = self._waits.setdefault(n, asyncio.Event())
        if len(self.keys) >= n:
            event.set()
        return event


async def test_a_handler_blocked_on_slack_does_not_hold_another_incidents_due_timer(db: Database) -> None:
    """Incident A's step timer waits on a Slack call that does not answer; B's, due later, is claimed by the next
    dispatch (the scheduler's tick) and fires while A still waits. A's own next step timer waits for its turn (one
    lane's timers one at a time, in due order), and fires once A's first is done."""
    clock = FakeClock(T0)
    await _incidents(db, "inc-a", "inc-b")
    async with db.session() as session:
        await timers.schedule(session, key="a1", kind="step_due", due_at=T0, incident_id="inc-a",
                              payload={"slow": True})
        await timers.schedule(session, key="a2", kind="step_due", due_at=T0, incident_id="inc-a")
        await timers.schedule(session, key="b1", kind="step_due", due_at=T0.replace(second=5), incident_id="inc-b")
    slack_answered = asyncio.Event()
    started, done = Log(), Log()

    async def step_due(timer: Timer) -> None:
        started.add(timer.key)
        if timer.payload.get("slow"):
            await slack_answered.wait()
        done.add(timer.key)

    service = TimerService(db, clock, "r")
    service.on("step_due", step_due)

    assert await service.dispatch() == 1, "A's first timer; A's second waits for its turn, B's is not due"
    await _until(started.reached(1), "A's handler started")
    clock.advance(5)
    assert await service.dispatch() == 1, "B's timer, while A's handler waits on Slack"
    await _until(done.reached(1), "B fired")
    assert done.keys == ["b1"] and started.keys == ["a1", "b1"], "A's second timer waits behind A's first"

    slack_answered.set()
    assert await service.tick() >= 1
    assert done.keys == ["b1", "a1", "a2"]
    async with db.session() as session:
        statuses = {t.key: t.status for t in (await session.exec(select(Timer))).all()}
    assert statuses == {"a1": "fired", "a2": "fired", "b1": "fired"}


async def test_one_incidents_other_kinds_and_listeners_run_beside_a_blocked_one(db: Database) -> None:
    """A's header refresh waits on Slack; A's decision deadline (another kind) and an outbox row of another
    listener fire meanwhile, while the same listener's second row waits behind its first (a listener sees its
    events in order). Rows of a kind registered unordered (DMs) do not wait for each other at all."""
    clock = FakeClock(T0)
    await _incidents(db, "inc-a")

    def event(listener: str, n: int) -> dict[str, object]:
        return {"event": "step_completed", "listener": listener, "kwargs": {"n": n}}

    async with db.session() as session:
        await timers.schedule(session, key="header", kind="header_tick", due_at=T0, incident_id="inc-a")
        await timers.schedule(session, key="deadline", kind="decision_due", due_at=T0, incident_id="inc-a")
        await timers.schedule(session, key="report-1", kind="event", due_at=T0, incident_id="inc-a",
                              payload=event("report.on_step", 1))
        await timers.schedule(session, key="report-2", kind="event", due_at=T0, incident_id="inc-a",
                              payload=event("report.on_step", 2))
        await timers.schedule(session, key="comms-1", kind="event", due_at=T0, incident_id="inc-a",
                              payload=event("comms.on_step", 1))
        for n in range(3):
            await timers.schedule(session, key=f"dm-{n}", kind="decider_dm", due_at=T0, incident_id="inc-a",
                                  payload={"slow": True})
    slack_answered = asyncio.Event()
    started, done = Log(), Log()

    async def handler(timer: Timer) -> None:
        started.add(timer.key)
        if timer.kind in ("header_tick", "decider_dm") or timer.key == "report-1":
            await slack_answered.wait()
        done.add(timer.key)

    service = TimerService(db, clock, "r")
    for kind in ("header_tick", "decision_due", "event"):
        service.on(kind, handler)
    service.on("decider_dm", handler, ordered=False)

    assert await service.dispatch() == 7, "all but the report listener's second row"
    await _until(done.reached(2), "the deadline and the comms row fired beside the blocked header")
    assert sorted(done.keys) == ["comms-1", "deadline"]
    assert sorted(started.keys) == ["comms-1", "deadline", "dm-0", "dm-1", "dm-2", "header", "report-1"]
    assert await service.dispatch() == 0, "report-2 waits for report-1"

    slack_answered.set()
    await service.tick()
    assert done.keys.index("report-2") > done.keys.index("report-1")
    assert sorted(done.keys) == sorted(["header", "deadline", "report-1", "report-2", "comms-1",
                                        "dm-0", "dm-1", "dm-2"])


async def test_a_finished_handler_claims_its_lanes_next_timer_at_once(db: Database) -> None:
    """With refill on (the app's scheduler), a finished handler makes room for the next due timer without
    waiting for the next tick: A's second step timer fires as soon as A's first is done."""
    clock = FakeClock(T0)
    await _incidents(db, "inc-a")
    async with db.session() as session:
        await timers.schedule(session, key="a1", kind="step_due", due_at=T0, incident_id="inc-a",
                              payload={"slow": True})
        await timers.schedule(session, key="a2", kind="step_due", due_at=T0, incident_id="inc-a")
    release = asyncio.Event()
    done = Log()

    async def step_due(timer: Timer) -> None:
        if timer.payload.get("slow"):
            await release.wait()
        done.add(timer.key)

    service = TimerService(db, clock, "r")
    service.refill = True
    service.on("step_due", step_due)
    assert await service.dispatch() == 1
    release.set()
    await _until(done.reached(2), "A's second timer fired after its first, with no tick between")
    assert done.keys == ["a1", "a2"]
    await service.close(timeout=30)


async def test_handlers_run_side_by_side_up_to_the_bound(db: Database) -> None:
    """More incidents with a blocked handler than slots: exactly `parallel` run at once, the rest stay pending
    (unclaimed, so no claim goes stale unworked), and start as slots free up."""
    clock = FakeClock(T0)
    ids = [f"inc-{i}" for i in range(5)]
    await _incidents(db, *ids)
    async with db.session() as session:
        for incident_id in ids:
            await timers.schedule(session, key=incident_id, kind="slow", due_at=T0, incident_id=incident_id)
    release = asyncio.Event()
    started = Log()
    running = 0
    most = 0

    async def slow(timer: Timer) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        started.add(timer.key)
        await release.wait()
        running -= 1

    service = TimerService(db, clock, "r", parallel=3)
    service.on("slow", slow)
    assert await service.dispatch() == 3
    await _until(started.reached(3), "three handlers started")
    async with db.session() as session:
        pending = (await session.exec(select(Timer).where(Timer.status == "pending"))).all()
    assert len(pending) == 2
    assert await service.dispatch() == 0, "no free slot"
    release.set()
    assert await service.tick() == 5 and most == 3


async def test_timers_scheduled_in_a_batch_are_one_insert_first_scheduling_wins(db: Database) -> None:
    """Inside `batched` (a declaration's hooks schedule ~27 timers) the rows are written by one INSERT at the end,
    in the same transaction; a key scheduled twice keeps its first row, and one already stored is left alone.
    A cancel inside the batch sees the rows scheduled before it."""
    from sqlalchemy import event

    await _incidents(db, "inc-a")
    async with db.session() as session:
        await timers.schedule(session, key="stored", kind="probe", due_at=T0, incident_id="inc-a")
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TIMERS"):
            inserts.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.session() as session, timers.batched(session):
            for i in range(27):
                await timers.schedule(session, key=f"t{i}", kind="probe", due_at=T0, incident_id="inc-a")
            await timers.schedule(session, key="t0", kind="other", due_at=T0, incident_id="inc-a")
            await timers.schedule(session, key="stored", kind="other", due_at=T0, incident_id="inc-a")
            assert inserts == [], "nothing written before the batch ends"
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert len(inserts) == 1
    async with db.session() as session:
        rows = {t.key: t.kind for t in (await session.exec(select(Timer))).all()}
    assert len(rows) == 28 and rows["t0"] == "probe" and rows["stored"] == "probe"

    async with db.session() as session, timers.batched(session):
        await timers.schedule(session, key="late", kind="probe", due_at=T0, incident_id="inc-a")
        assert await timers.cancel(session, "inc-a", kinds=["probe"]) == 29
    async with db.session() as session:
        statuses = {t.status for t in (await session.exec(select(Timer))).all()}
    assert statuses == {"cancelled"}


async def test_a_declaration_writes_its_timers_in_one_statement(tmp_path: Path) -> None:
    """Declaring an incident schedules the war room's promise, the decision's deadline, the steps' and phases'
    due times, the targets and the management ladder: all in one INSERT in the declaration's transaction."""
    from sqlalchemy import event

    from bot.incidents.service import Declaration
    from tests.support.harness import harness

    async with harness(tmp_path) as h:
        inserts: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO TIMERS"):
                inserts.append(statement)

        engine = h.bot.db.engine.sync_engine
        event.listen(engine, "before_cursor_execute", count)
        try:
            incident, created = await h.bot.incidents.declare(Declaration(
                level="immediate", declared_by="U1", title="Payments failing", scenario_id="payment_system"))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        async with h.bot.db.session() as session:
            kinds = {t.kind for t in (await session.exec(select(Timer).where(Timer.incident_id == incident.id))).all()}
    assert created and len(inserts) == 1
    assert {"warroom_open", "decision_due", "step_due", "phase_due", "escalation_rung"} <= kinds


async def test_start_lateness_is_observed_by_kind_when_the_handler_starts(db: Database) -> None:
    """The lateness histogram counts due -> handler started, labelled by timer kind: a step timer fired 7 s after
    its due time lands in the 10 s bucket of its own kind, and a handler's own duration adds nothing."""
    from bot.core.metrics import Metrics

    clock = FakeClock(T0)
    await _incidents(db, "inc-a")
    async with db.session() as session:
        await timers.schedule(session, key="a1", kind="step_due", due_at=T0, incident_id="inc-a")

    async def step_due(_timer: Timer) -> None:
        clock.advance(60)  # a minute of Slack calls inside the handler

    service = TimerService(db, clock, "r")
    service.metrics = Metrics()
    service.on("step_due", step_due)
    clock.advance(7)
    assert await service.tick() == 1

    def bucket(le: str) -> float | None:
        return service.metrics.registry.get_sample_value(
            "rollbot_timer_lateness_seconds_bucket", {"kind": "step_due", "le": le})

    assert (bucket("5.0"), bucket("10.0"), bucket("+Inf")) == (0.0, 1.0, 1.0)
