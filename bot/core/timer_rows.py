"""Writing timers in the caller's transaction: `schedule` (once per key), `batched` (one INSERT for many) and
`cancel`. A timer written with the state change that owes it is the promise; bot/core/timers.py keeps it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import Timer

EVENT_KIND = "event"  # an outbox row (bot/core/events.py): its lane is per listener
_BATCH = "rollbot_timer_batch"  # session.info key: timers scheduled inside `batched`, by key, not yet written
BATCH_ROWS = 100  # rows per multi-row INSERT (well inside every back end's limit on bound parameters)


async def schedule(session: AsyncSession, *, key: str, kind: str, due_at: datetime,
                   incident_id: str | None = None, payload: dict[str, Any] | None = None) -> None:
    """Insert the timer unless one with this key exists: scheduling twice is harmless. Inside `batched`, the
    row is written with the others at the batch's end, in the same transaction."""
    values = {"key": key, "kind": kind, "due_at": due_at, "incident_id": incident_id,
              "payload": payload or {}, "status": "pending"}
    batch: dict[str, dict[str, Any]] | None = session.info.get(_BATCH)
    if batch is not None:
        batch.setdefault(key, values)  # the first scheduling of a key wins, as with one INSERT each
        return
    await _insert(session, [values])


async def _insert(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for start in range(0, len(rows), BATCH_ROWS):
        await session.exec(insert(Timer).values(rows[start:start + BATCH_ROWS])  # type: ignore[call-overload]
                           .on_conflict_do_nothing(index_elements=["key"]))


async def _flush(session: AsyncSession) -> None:
    batch: dict[str, dict[str, Any]] | None = session.info.get(_BATCH)
    if batch:
        rows = list(batch.values())
        batch.clear()
        await _insert(session, rows)


@contextlib.asynccontextmanager
async def batched(session: AsyncSession) -> AsyncIterator[None]:
    """Timers scheduled inside are written as one INSERT at the end (a declaration schedules ~27: one statement
    instead of 27 round trips). Anything reading or cancelling timers in the session writes the batch first."""
    if _BATCH in session.info:  # nested: the outer batch writes them
        yield
        return
    session.info[_BATCH] = {}
    try:
        yield
        await _flush(session)
    finally:
        session.info.pop(_BATCH, None)


# Timers that outlive the incident: the post-incident follow-ups are scheduled when it closes.
AFTER_CLOSE = ("follow_up",)


async def cancel(session: AsyncSession, incident_id: str, kinds: list[str] | None = None,
                 key_prefix: str | None = None, except_kinds: tuple[str, ...] = ()) -> int:
    """Cancel pending timers of an incident (all, or of some kinds, or under a key prefix)."""
    await _flush(session)  # a timer scheduled earlier in the batch is cancelled too
    conditions = [Timer.incident_id == incident_id, Timer.status == "pending"]
    if kinds:
        conditions.append(col(Timer.kind).in_(kinds))
    if except_kinds:
        conditions.append(col(Timer.kind).not_in(except_kinds))
    if key_prefix:
        conditions.append(col(Timer.key).startswith(key_prefix))
    if not kinds or EVENT_KIND not in kinds:  # an outbox row is work owed, not a reminder: closing does not drop it
        conditions.append(Timer.kind != EVENT_KIND)
    result = await session.exec(update(Timer).where(*conditions).values(status="cancelled"))  # type: ignore[call-overload]
    return int(result.rowcount or 0)
