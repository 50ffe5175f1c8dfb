"""Domain events through a transactional outbox: engine modules react to each other without importing each other,
and a reaction is never lost to a crash.

Events (keyword arguments in brackets):
  declared [session, incident]            inline only: an incident is being written (its transaction); listeners
                                          schedule what it owes (the war-room promise, deadlines, the ladder)
  acted [incident_id, user, interaction]  inline only: a person was authorized to act in an incident (a tick, a
                                          vote, a run...): acting is being there (their pages are acknowledged)
  war_room_ready [incident_id]            channel, invites, header and Phase 1 are up
  phase_started [incident_id, phase_id]   a phase's steps were posted (Phase 1 included)
  step_completed [incident_id, step_id, status]   done or skipped
  decided [incident_id, decision]         the rollback decision: approved | declined
  decision_overdue [incident_id]          the level's decision deadline passed undecided
  approval_needed [incident_id, execution_id, action_id, requested_by]   a requested action needs its approvers
  action_approved [incident_id, execution_id]   a gated action's policy and typed confirmation are satisfied
  action_declined [incident_id, execution_id]   an authorized approver declined a gated action
  execution_finished [incident_id, execution_id, action_id, outcome]
  moment [incident_id, moment]            declared | traffic_diverted | rollback_completed | resolved (comms;
                                          the comms also draft the `decided` moment on an approved decision)
  comms_sent [incident_id, draft_id]      a communication was marked as sent (the report shows it as sent)
  closed [incident_id]                    resolved or cancelled: timers and the ladder stop
  pages_acked_by_acting [incident_id, user, pages]   a paged person acted in the incident: their pages are
                                          acknowledged (the DMs and the header thread say so)

`emit(name, session=..., change=..., **kwargs)` writes one outbox row per (event, listener) in the transaction of
the state change: a `Timer` of kind `event`, keyed by event, listener and `change` (a deterministic id of the
change, so emitting the same change again writes nothing). After the commit `deliver` works those rows at once,
in order, in this process: the fast path. The row is the record: a crash before or during delivery leaves it to
the timer worker (any replica) once its grace has passed, a failing listener is retried with backoff, and after
the last attempt the row is parked (see bot/core/timers.py). Listeners are named (the name is part of the row,
so it must stay stable across releases) and idempotent: a row may be worked again after a crash.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import timers
from bot.store.models import Timer

if TYPE_CHECKING:
    from bot.core.clock import Clock
    from bot.core.timers import TimerService
    from bot.store.db import Database

log = logging.getLogger(__name__)
Listener = Callable[..., Awaitable[None]]
EVENT = timers.EVENT_KIND  # the timer kind of an outbox row
# The fast path has this long to take its rows before the timer worker may (a crash in between, another replica).
FAST_PATH_GRACE = timedelta(seconds=10)


@dataclass
class Outbound:
    """Rows written in a transaction, to deliver after its commit."""

    keys: list[str] = field(default_factory=list)


# Events whose listeners run inline only: their arguments are live objects (a session, a row), never a row's payload.
INLINE_ONLY = frozenset({"declared", "acted"})


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[tuple[str, Listener]]] = {}
        self._inline: dict[str, list[tuple[str, Listener]]] = {}
        self.db: Database | None = None
        self.clock: Clock | None = None
        self.timers: TimerService | None = None

    def bind(self, db: Database, clock: Clock, timers: TimerService) -> None:
        self.db, self.clock, self.timers = db, clock, timers
        timers.on(EVENT, self._work)

    def on(self, event: str, listener: Listener, *, name: str, inline: bool = False) -> None:
        """Subscribe `listener` under a stable `name` (it is stored in the outbox row that calls it). `inline`: called
        at the emit itself, in the caller's transaction (as `session=`, when it has one) and before the caller
        answers, for work that must commit with the change or happen within the click; not a row, so not retried."""
        if event in INLINE_ONLY and not inline:
            raise ValueError(f"{event} is inline only: subscribe with inline=True")
        listeners = (self._inline if inline else self._listeners).setdefault(event, [])
        if any(n == name for n, _ in listeners):
            raise ValueError(f"listener {name} is already subscribed to {event}")
        listeners.append((name, listener))

    def listeners(self, event: str) -> list[str]:
        return [n for n, _ in self._listeners.get(event, [])]

    async def emit(self, event: str, session: AsyncSession | None = None, *, change: str | None = None,
                   **kwargs: Any) -> Outbound:
        """Write the event's outbox rows in `session` (the state change's transaction) and return them for
        `deliver` after the commit. Without a session the rows get their own transaction and are delivered at
        once (for emits from a durable timer handler, which is itself retried). `change` names the state change
        (same change, same rows: emitting twice is harmless); without it every emit is a new change."""
        for _, hook in self._inline.get(event, []):
            await hook(**kwargs) if session is None else await hook(session=session, **kwargs)
        if session is None:
            if not self._listeners.get(event):
                return Outbound()
            assert self.db is not None, "EventBus.bind was not called"
            async with self.db.session() as own:
                out = await self._rows(event, own, change, kwargs)
            await self.deliver(out)
            return Outbound()
        return await self._rows(event, session, change, kwargs)

    async def _rows(self, event: str, session: AsyncSession, change: str | None, kwargs: dict[str, Any]) -> Outbound:
        assert self.clock is not None, "EventBus.bind was not called"
        change = change or secrets.token_hex(8)
        out = Outbound()
        due = self.clock.now() + FAST_PATH_GRACE
        for name, _ in self._listeners.get(event, []):
            key = f"{EVENT}:{event}:{name}:{change}"
            await timers.schedule(session, key=key, kind=EVENT, due_at=due, incident_id=kwargs.get("incident_id"),
                                  payload={"event": event, "listener": name, "kwargs": kwargs})
            out.keys.append(key)
        return out

    async def deliver(self, *outs: Outbound) -> None:
        """The fast path: work the rows now, in order, each claimed first (a row the worker or another replica
        took already is theirs). A failure is logged and left to the row's retries; it never stops the rest."""
        assert self.db is not None and self.timers is not None
        for out in outs:
            for key in out.keys:
                await self.timers.work_now(key)

    async def _work(self, timer: Timer) -> None:
        payload = timer.payload
        event, name = str(payload.get("event")), str(payload.get("listener"))
        listener = next((fn for n, fn in self._listeners.get(event, []) if n == name), None)
        if listener is None:
            raise LookupError(f"nothing called {name} listens to {event} any more")
        await listener(**dict(payload.get("kwargs") or {}))

    async def pending(self, incident_id: str) -> list[Timer]:
        """Outbox rows of an incident not yet done (pending or claimed)."""
        assert self.db is not None
        async with self.db.session() as session:
            return list((await session.exec(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind == EVENT,
                Timer.status.in_(("pending", "claimed"))))).all())  # type: ignore[attr-defined]

