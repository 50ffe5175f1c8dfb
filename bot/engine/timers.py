"""Durable timers: rows with a due time, claimed by a conditional UPDATE so each fires exactly once,
across restarts and across replicas sharing one database."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.store.db import Database
from bot.store.models import Timer

log = logging.getLogger(__name__)

Handler = Callable[[Timer], Awaitable[None]]
# A claim older than this belongs to a replica that died mid-fire; the timer is taken again.
STALE_CLAIM = timedelta(minutes=2)


async def schedule(session: AsyncSession, *, key: str, kind: str, due_at: datetime,
                   incident_id: str | None = None, payload: dict[str, Any] | None = None) -> None:
    """Insert the timer unless one with this key exists: scheduling twice is harmless."""
    values = {"key": key, "kind": kind, "due_at": due_at, "incident_id": incident_id,
              "payload": payload or {}, "status": "pending"}
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.exec(insert(Timer).values(**values).on_conflict_do_nothing(index_elements=["key"]))  # type: ignore[call-overload]


# Timers that outlive the incident: the post-incident follow-ups are scheduled when it closes.
AFTER_CLOSE = ("follow_up",)


async def cancel(session: AsyncSession, incident_id: str, kinds: list[str] | None = None,
                 key_prefix: str | None = None, except_kinds: tuple[str, ...] = ()) -> int:
    """Cancel pending timers of an incident (all, or of some kinds, or under a key prefix)."""
    conditions = [Timer.incident_id == incident_id, Timer.status == "pending"]
    if kinds:
        conditions.append(col(Timer.kind).in_(kinds))
    if except_kinds:
        conditions.append(col(Timer.kind).not_in(except_kinds))
    if key_prefix:
        conditions.append(col(Timer.key).startswith(key_prefix))
    result = await session.exec(update(Timer).where(*conditions).values(status="cancelled"))  # type: ignore[call-overload]
    return int(result.rowcount or 0)


class TimerService:
    def __init__(self, db: Database, clock: Clock, owner: str) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.handlers: dict[str, Handler] = {}
        self.lateness: list[float] = []  # seconds, for metrics

    def on(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    async def claim_due(self, limit: int = 200) -> list[Timer]:
        now = self.clock.now()
        async with self.db.session() as session:
            due = (await session.exec(
                select(Timer.id).where(
                    Timer.due_at <= now,
                    or_(Timer.status == "pending",
                        and_(Timer.status == "claimed", Timer.fired_at < now - STALE_CLAIM)),  # type: ignore[operator]
                ).order_by(Timer.due_at).limit(limit)
            )).all()
        claimed: list[Timer] = []
        for timer_id in due:
            async with self.db.session() as session:
                # fired_at doubles as the claim time while status is 'claimed'.
                result = await session.exec(  # type: ignore[call-overload]
                    update(Timer)
                    .where(Timer.id == timer_id,
                           or_(Timer.status == "pending",
                               and_(Timer.status == "claimed", Timer.fired_at < now - STALE_CLAIM)))  # type: ignore[operator]
                    .values(status="claimed", claimed_by=self.owner, fired_at=now)
                )
                if result.rowcount == 1:
                    timer = await session.get(Timer, timer_id)
                    if timer is not None:
                        claimed.append(timer)
        return claimed

    async def tick(self) -> int:
        """Fire every due timer this process wins; returns how many it fired."""
        fired = 0
        for timer in await self.claim_due():
            handler = self.handlers.get(timer.kind)
            self.lateness.append((self.clock.now() - timer.due_at).total_seconds())
            try:
                if handler is None:
                    log.error("no handler for timer kind %s (%s)", timer.kind, timer.key)
                else:
                    await handler(timer)
            except Exception:
                log.exception("timer %s failed", timer.key)
            finally:
                async with self.db.session() as session:
                    await session.exec(update(Timer).where(Timer.id == timer.id)  # type: ignore[call-overload]
                                       .values(status="fired", fired_at=self.clock.now()))
            fired += 1
        return fired
