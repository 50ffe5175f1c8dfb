"""The store side of executions, on SQLite and PostgreSQL: one row per idempotency key however many concurrent
inserts race for it, transitions only from the expected state, and leases that expire select the row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.executions import store
from bot.store.db import Database
from bot.store.models import Execution, Incident

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


async def _incident(db: Database) -> None:
    async with db.session() as session:
        session.add(Incident(id="inc-1", title="t", runbook="rb", level="immediate", declared_by="U1", declared_at=T0))


def _row(n: int, attempt: int = 1) -> Execution:
    return Execution(id=f"ex-{n}", incident_id="inc-1", step_id="s", action_id="a", attempt=attempt,
                     idempotency_key=store.idempotency_key("inc-1", "s", "a", attempt), requested_by="U1",
                     requested_at=T0)


async def test_concurrent_inserts_of_one_key_give_one_row(db: Database) -> None:
    await _incident(db)

    async def insert(n: int) -> bool:
        async with db.session() as session:
            return await store.insert_once(session, _row(n))

    results = await asyncio.gather(*(insert(n) for n in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    async with db.session() as session:
        row = await store.by_key(session, "inc-1:s:a:1")
        assert row is not None and row.id == f"ex-{results.index(True)}"


async def test_a_transition_happens_once_and_only_from_the_expected_state(db: Database) -> None:
    await _incident(db)
    async with db.session() as session:
        await store.insert_once(session, _row(1))

    async def move() -> bool:
        async with db.session() as session:
            return await store.transition(session, "ex-1", ("requested",), "approved")

    assert sorted(await asyncio.gather(move(), move(), move())) == [False, False, True]
    async with db.session() as session:
        assert not await store.transition(session, "ex-1", ("running",), "succeeded")
        assert (await store.get(session, "ex-1")).state == "approved"  # type: ignore[union-attr]


async def test_expired_leases_select_running_rows_except_our_own(db: Database) -> None:
    await _incident(db)
    async with db.session() as session:
        for n, expires in ((1, T0 - timedelta(seconds=1)), (2, T0 + timedelta(seconds=30)), (3, None),
                           (4, T0 - timedelta(seconds=5))):
            row = _row(n, attempt=n)
            row.state, row.lease_owner, row.lease_expires_at = "running", "replica-a", expires
            await store.insert_once(session, row)
    async with db.session() as session:
        assert sorted(await store.expired(session, T0, exclude=["ex-4"])) == ["ex-1", "ex-3"]
        assert await store.renew_leases(session, ["ex-1", "ex-2"], "replica-b", T0 + timedelta(seconds=30)) == 0
        assert await store.renew_leases(session, ["ex-1", "ex-2"], "replica-a", T0 + timedelta(seconds=30)) == 2
    async with db.session() as session:
        assert sorted(await store.expired(session, T0, exclude=[])) == ["ex-3", "ex-4"]


async def test_latest_ignores_dry_runs_asked_for_by_hand(db: Database) -> None:
    await _incident(db)
    async with db.session() as session:
        await store.insert_once(session, _row(1, attempt=1))
        await store.insert_once(session, _row(2, attempt=2))
        dry = _row(3, attempt=1)
        dry.idempotency_key = store.idempotency_key("inc-1", "s", "a", "dry-1")
        await store.insert_once(session, dry)
    async with db.session() as session:
        assert (await store.latest(session, "inc-1", "s", "a")).id == "ex-2"  # type: ignore[union-attr]
        assert await store.count_dry_runs(session, "inc-1", "s", "a") == 1
