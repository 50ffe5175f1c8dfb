"""Execution rows as a durable state machine: inserted once per idempotency key, moved only by conditional UPDATEs.

requested -> approved -> running -> succeeded | failed | timed_out | cancelled | interrupted
requested | approved -> cancelled (declined or cancelled before it ran); failed-like -> skipped (a person moved on).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import Execution

ACTIVE = ("requested", "approved", "running")
RETRYABLE = ("failed", "timed_out", "cancelled", "interrupted")
FINAL = ("succeeded", "skipped", *RETRYABLE)


def idempotency_key(incident_id: str, step_id: str, action_id: str, attempt: int | str) -> str:
    """One execution per (incident, step, action, attempt): a double click or a second replica inserts it once."""
    return f"{incident_id}:{step_id}:{action_id}:{attempt}"


async def insert_once(session: AsyncSession, row: Execution) -> bool:
    """Insert unless the idempotency key exists; True when this caller's row went in (no exception, no rollback)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {c.name: getattr(row, c.name) for c in Execution.__table__.columns}  # type: ignore[attr-defined]
    statement = insert(Execution).values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)


async def transition(session: AsyncSession, execution_id: str, from_states: Sequence[str], to_state: str,
                     *conditions: Any, **values: Any) -> bool:
    """Move one execution from one of `from_states` to `to_state`; False when it was not in them (someone else won)."""
    result = await session.exec(update(Execution).where(  # type: ignore[call-overload]
        Execution.id == execution_id, col(Execution.state).in_(list(from_states)), *conditions,
    ).values(state=to_state, **values))
    return result.rowcount == 1


async def get(session: AsyncSession, execution_id: str) -> Execution | None:
    return await session.get(Execution, execution_id)


async def by_key(session: AsyncSession, key: str) -> Execution | None:
    return (await session.exec(select(Execution).where(Execution.idempotency_key == key))).first()


async def latest(session: AsyncSession, incident_id: str, step_id: str, action_id: str) -> Execution | None:
    """The newest real attempt (dry runs asked for by hand on a real incident do not count)."""
    rows = await session.exec(select(Execution).where(
        Execution.incident_id == incident_id, Execution.step_id == step_id, Execution.action_id == action_id,
        col(Execution.idempotency_key).not_like("%:dry-%"),
    ).order_by(col(Execution.attempt).desc()).limit(1))
    return rows.first()


async def count_dry_runs(session: AsyncSession, incident_id: str, step_id: str, action_id: str) -> int:
    rows = await session.exec(select(Execution.id).where(
        Execution.incident_id == incident_id, Execution.step_id == step_id, Execution.action_id == action_id,
        col(Execution.idempotency_key).like("%:dry-%")))
    return len(rows.all())


async def running_ids(session: AsyncSession, ids: Sequence[str]) -> list[Execution]:
    if not ids:
        return []
    rows = await session.exec(select(Execution).where(col(Execution.id).in_(list(ids)), Execution.state == "running"))
    return list(rows.all())


async def renew_leases(session: AsyncSession, ids: Sequence[str], owner: str, until: datetime) -> int:
    if not ids:
        return 0
    result = await session.exec(update(Execution).where(  # type: ignore[call-overload]
        col(Execution.id).in_(list(ids)), Execution.state == "running", Execution.lease_owner == owner,
    ).values(lease_expires_at=until))
    return int(result.rowcount or 0)


async def expired(session: AsyncSession, now: datetime, exclude: Sequence[str]) -> list[str]:
    """Running executions whose lease ran out: their process (or its whole replica) is gone."""
    query = select(Execution.id).where(Execution.state == "running", lease_expired(now))
    if exclude:
        query = query.where(col(Execution.id).not_in(list(exclude)))
    return list((await session.exec(query)).all())


async def left_by(session: AsyncSession, owner: str) -> list[str]:
    """Running executions leased to `owner` in a previous life (called at its start-up, before it runs any)."""
    return list((await session.exec(select(Execution.id).where(
        Execution.state == "running", Execution.lease_owner == owner))).all())


def owned_by(owner: str) -> Any:
    return Execution.lease_owner == owner


def lease_expired(now: datetime) -> Any:
    return or_(col(Execution.lease_expires_at) < now, col(Execution.lease_expires_at).is_(None))
