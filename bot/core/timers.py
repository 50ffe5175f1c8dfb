"""Durable timers: rows with a due time, claimed by a conditional UPDATE so each fires exactly once,
across restarts and across replicas sharing one database. Writing them (`schedule`, `batched`, `cancel`, in the
caller's transaction) is bot/core/timer_rows.py; this module works them."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import secrets
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import httpx
from redis.exceptions import RedisError
from slack_sdk.errors import SlackApiError
from sqlalchemy import String, and_, case, cast, literal, or_, update
from sqlmodel import col, select

from bot.core import timeline
from bot.core.clock import Clock
from bot.core.timer_rows import AFTER_CLOSE, EVENT_KIND, batched, cancel, schedule
from bot.store.db import Database
from bot.store.models import Timer

log = logging.getLogger(__name__)

__all__ = ["AFTER_CLOSE", "EVENT_KIND", "TimerService", "batched", "cancel", "describe", "schedule"]

Handler = Callable[[Timer], Awaitable[None]]
# A claim older than this belongs to a replica that died mid-fire; the timer is taken again. A live worker renews
# its claims every RENEW_EVERY_S (real seconds) while their handlers run, so a long handler is never taken twice.
STALE_CLAIM = timedelta(minutes=2)
RENEW_EVERY_S = 20.0
# Posts the visible failure of a parked row in its incident's thread (bot/incidents/warroom.py handles it).
PARKED_NOTICE = "parked_notice"
CHUNK = 100  # timers claimed per transaction, at most: a burst due at once (fifty incidents' deadlines) starts together
PARALLEL = 256  # handlers running at once: every lane side by side (a waiting handler costs only a coroutine)
MAX_ATTEMPTS = 6
LATE_START_S = 2.0  # a handler starting later than this after its due time is logged (the lateness goal)
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 120.0
# Failures that are routine for a retrying worker (a Slack or Redis blip): logged without a traceback.
RETRYABLE: tuple[type[BaseException], ...] = (SlackApiError, httpx.HTTPError, aiohttp.ClientError, RedisError,
                                               OSError, TimeoutError)


class TimerService:
    """Claims due timers in batches (one conditional UPDATE per batch, never more than there are free slots, so no
    claim waits long unworked) and fires them with bounded parallelism, in lanes: one incident's timers of one kind
    one at a time in due order (one listener's outbox rows likewise), every other lane side by side. Kinds
    registered `ordered=False` (a DM, a page: each its own delivery) run one lane per row. (An incident's lanes run
    at once, so code that rewrites its `data` reads the row `with_for_update`.) `dispatch` starts
    handlers and returns at once, so a handler waiting on Slack (a rate-limit window, a slow answer) holds only its
    own lane, never another incident's timers nor its own incident's other kinds: the scheduler calls it every
    tick, and a finished handler makes room for the next due timer at once. A handler that raises is retried with
    backoff and jitter, never marked fired; after MAX_ATTEMPTS it is parked (status failed): logged, counted, put
    on the incident's timeline and posted in its thread with a Retry button (a `parked_notice` timer written in
    the same transaction). `retry` puts a parked row back to pending. This is also the outbox worker
    (bot/core/events.py): one way to say "do this later, durably"."""

    def __init__(self, db: Database, clock: Clock, owner: str, rng: random.Random | None = None,
                 parallel: int = PARALLEL) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner
        self.rng = rng or random.Random()
        self.parallel = parallel
        self.handlers: dict[str, Handler] = {}
        self.unordered: set[str] = set()  # kinds whose rows are independent: one lane per row
        self.metrics: Any = None  # bot.core.metrics.Metrics: lateness histogram, retries, failures
        self.max_lateness = 0.0  # seconds, the largest seen (a gauge beside the histogram)
        self.renew_every_s = RENEW_EVERY_S
        # Set by the app's scheduler: a finished handler claims the next due timer at once instead of at the next
        # tick. Off in tests and the demo, which fire timers only when they move the clock (tick waits for them).
        self.refill = False
        self.fired = 0  # handlers that succeeded, since start
        self._running: dict[str, asyncio.Task[int]] = {}  # lane -> its handler
        self._claiming = asyncio.Lock()
        self._refilling: asyncio.Task[None] | None = None
        self._again = False
        self._finished_count = 0
        self._closed = False

    def on(self, kind: str, handler: Handler, *, ordered: bool = True) -> None:
        """`ordered=False`: the kind's rows do not depend on each other (one DM, one page), so an incident's rows
        of it run side by side instead of one after another."""
        self.handlers[kind] = handler
        if ordered:
            self.unordered.discard(kind)
        else:
            self.unordered.add(kind)

    @staticmethod
    def _claimable(now: datetime) -> Any:
        return and_(Timer.due_at <= now,  # type: ignore[operator]
                    or_(Timer.status == "pending",
                        and_(Timer.status == "claimed", Timer.fired_at < now - STALE_CLAIM)))  # type: ignore[operator]

    def _lane_of(self, timer_id: int | None, incident_id: str | None, kind: str, payload: dict[str, Any] | None) -> str:
        """Timers in one lane fire one at a time, in due order: an incident's timers of one kind (its outbox rows
        per listener: a listener sees its events in order). An incident-less or unordered row is a lane alone."""
        if incident_id is None or kind in self.unordered:
            return f"timer:{timer_id}"
        if kind == EVENT_KIND:
            return f"{incident_id}:{kind}:{(payload or {}).get('listener')}"
        return f"{incident_id}:{kind}"

    def lane(self, timer: Timer) -> str:
        return self._lane_of(timer.id, timer.incident_id, timer.kind, timer.payload)

    def _lane_sql(self) -> Any:
        """`_lane_of` in SQL, so a claim skips the busy lanes in the query itself (however many rows wait in them)."""
        incident = col(Timer.incident_id)
        alone = literal("timer:") + cast(Timer.id, String)  # never busy: its one row is claimed while it runs
        by_kind = incident + literal(":") + col(Timer.kind)
        by_listener = by_kind + literal(":") + col(Timer.payload)["listener"].as_string()
        whens: list[Any] = [(incident.is_(None), alone)]
        if self.unordered:
            whens.append((col(Timer.kind).in_(sorted(self.unordered)), alone))
        whens.append((Timer.kind == EVENT_KIND, by_listener))
        return case(*whens, else_=by_kind)

    async def claim_due(self, limit: int = CHUNK, busy: Collection[str] = ()) -> list[Timer]:
        """Claim up to `limit` due timers in one transaction, the earliest due of each lane not in `busy` (lanes
        whose handler runs here: their next timer waits its turn unclaimed); a timer another replica claimed
        first is skipped (the UPDATE re-checks each row)."""
        now = self.clock.now()
        token = f"{self.owner}:{secrets.token_hex(4)}"
        async with self.db.session() as session:
            query = select(Timer.id, Timer.incident_id, Timer.kind, Timer.payload).where(self._claimable(now))
            if busy:
                query = query.where(self._lane_sql().not_in(list(busy)))
            candidates = (await session.exec(query.order_by(Timer.due_at, Timer.id).limit(limit * 4))).all()
            due: list[int] = []
            lanes: set[str] = set()
            for timer_id, incident_id, kind, payload in candidates:
                lane = self._lane_of(timer_id, incident_id, kind, payload)
                if lane in lanes:
                    continue  # one per lane: its later ones once this one is done, in due order
                lanes.add(lane)
                due.append(timer_id)
                if len(due) == limit:
                    break
            if not due:
                return []
            await session.exec(update(Timer).where(  # type: ignore[call-overload]
                col(Timer.id).in_(due), self._claimable(now)).values(status="claimed", claimed_by=token, fired_at=now))
            return list((await session.exec(select(Timer).where(Timer.claimed_by == token, Timer.status == "claimed")
                                            .order_by(Timer.due_at, Timer.id))).all())

    async def dispatch(self) -> int:
        """Claim due timers while there are free slots and start their handlers; returns how many it started,
        without waiting for them (the scheduler's job: a slow handler never delays the next tick)."""
        started = 0
        async with self._claiming:
            while not self._closed and (free := self.parallel - len(self._running)) > 0:
                finished = self._finished_count
                batch = await self.claim_due(min(CHUNK, free), busy=[k for k in self._running if not k.startswith("timer:")])
                for timer in batch:
                    lane = self.lane(timer)
                    task = asyncio.ensure_future(self.fire(timer))
                    self._running[lane] = task
                    task.add_done_callback(functools.partial(self._finished, lane))
                started += len(batch)
                if not batch and self._finished_count == finished:
                    break  # nothing more is due here (or it is another replica's, or waits for its lane's turn)
                # (a handler that finished during the query freed its lane: look again)
        return started

    def _finished(self, lane: str, done: asyncio.Task[int]) -> None:
        if self._running.get(lane) is done:
            del self._running[lane]
        self._finished_count += 1
        if not done.cancelled():
            if done.exception() is not None:  # the store failed while recording the outcome: the claim goes stale
                log.error("timer worker failed", exc_info=done.exception())
            else:
                self.fired += done.result()
        if self.refill and not self._closed:
            self._again = True
            if self._refilling is None or self._refilling.done():
                self._refilling = asyncio.ensure_future(self._refill())

    async def _refill(self) -> None:
        """Claim what the finished handlers made room for (their lanes' next timers among it)."""
        while self._again and not self._closed:
            self._again = False
            try:
                await self.dispatch()
            except Exception:  # a database blip: the scheduler's next tick claims it
                log.warning("could not claim the next due timers", exc_info=True)
                return

    async def tick(self) -> int:
        """Fire every due timer this process wins and wait for them (tests, the demo, a retry pressed): handlers
        still run side by side, each lane's in due order. Returns how many fired meanwhile."""
        before = self.fired
        while True:
            await self.dispatch()
            running = set(self._running.values())
            if not running:
                return self.fired - before
            await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)

    async def close(self, timeout: float) -> None:
        """Start nothing more; give the handlers under way `timeout` seconds to finish (a claim left behind is
        taken again once stale)."""
        self._closed = True
        running = set(self._running.values())
        if running:
            await asyncio.wait(running, timeout=timeout)

    async def claim_key(self, key: str) -> Timer | None:
        """Claim one pending timer by key, whatever its due time (the outbox's fast path); None when it is done,
        cancelled or someone else's."""
        now = self.clock.now()
        token = f"{self.owner}:{secrets.token_hex(4)}"
        async with self.db.session() as session:
            result = await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.key == key, Timer.status == "pending").values(status="claimed", claimed_by=token, fired_at=now))
            if result.rowcount != 1:
                return None
            return (await session.exec(select(Timer).where(Timer.key == key))).one()

    async def retry(self, timer_id: int) -> Timer | None:
        """A parked row back to pending, due now, attempts from zero; None when it is not parked (any more)."""
        async with self.db.session() as session:
            result = await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.id == timer_id, Timer.status == "failed").values(
                    status="pending", attempts=0, due_at=self.clock.now(), claimed_by=None))
            if result.rowcount != 1:
                return None
            return await session.get(Timer, timer_id)

    async def work_now(self, key: str) -> None:
        """The outbox's fast path for one row: claim it by key and fire it now; a row the worker or another replica
        took already is theirs, and a failure is left to the row's retries."""
        timer = await self.claim_key(key)
        if timer is not None:
            await self.fire(timer)

    async def release_own(self) -> int:
        """At start-up, before any tick: rows still claimed under this replica's id (ROLLBOT_REPLICA_ID kept across
        a restart) were claimed by its previous life, which died mid-work. They go back to pending now instead of
        after STALE_CLAIM. (The default id is unique per process: then nothing matches and leases do the work.)"""
        async with self.db.session() as session:
            result = await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.status == "claimed", col(Timer.claimed_by).startswith(f"{self.owner}:", autoescape=True)).values(
                    status="pending", claimed_by=None))
            return int(result.rowcount or 0)

    async def parked(self) -> int:
        """How many rows are parked (failed after their last attempt) and wait for a person."""
        async with self.db.session() as session:
            return len((await session.exec(select(Timer.id).where(Timer.status == "failed"))).all())

    async def fire(self, timer: Timer) -> int:
        """Run a claimed timer's handler, renewing the claim while it runs; 1 when it fired, 0 when it failed."""
        lateness = max(0.0, (self.clock.now() - timer.due_at).total_seconds())
        self.max_lateness = max(self.max_lateness, lateness)
        if lateness > LATE_START_S:
            log.warning("timer %s started %.1f s after its due time", timer.key, lateness)
        if self.metrics is not None:
            self.metrics.timer_lateness_seconds.labels(timer.kind).observe(lateness)
        handler = self.handlers.get(timer.kind)
        # The lease is renewed beside the handler and stopped by an event, never cancelled mid-query (a cancelled
        # database call can leave its pooled connection unusable).
        stop = asyncio.Event()
        renewing = asyncio.ensure_future(self._renew(timer, stop))
        try:
            if handler is None:
                raise LookupError(f"no handler for timer kind {timer.kind}")
            await handler(timer)
        except Exception as exc:  # retried: the row is the promise that this work happens
            stop.set()
            await renewing
            await self._failed(timer, exc)
            return 0
        finally:
            stop.set()
            await renewing
        async with self.db.session() as session:
            await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.id == timer.id, Timer.claimed_by == timer.claimed_by, Timer.status == "claimed")
                .values(status="fired", fired_at=self.clock.now()))
        return 1

    async def _renew(self, timer: Timer, stop: asyncio.Event) -> None:
        """The lease: while this worker is alive and the handler runs, its claim stays fresh."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.renew_every_s)
            except TimeoutError:
                try:
                    await self.renew(timer)
                except Exception:  # a database blip: the next renewal tries again, the handler carries on
                    log.warning("could not renew the claim of timer %s", timer.key, exc_info=True)

    async def renew(self, timer: Timer) -> None:
        async with self.db.session() as session:
            await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.id == timer.id, Timer.claimed_by == timer.claimed_by, Timer.status == "claimed")
                .values(fired_at=self.clock.now()))

    async def _failed(self, timer: Timer, exc: BaseException) -> None:
        attempts = timer.attempts + 1
        error = (str(exc) or type(exc).__name__)[:500]
        gave_up = attempts >= MAX_ATTEMPTS
        if gave_up:
            log.error("timer %s failed %d times, giving up: %s", timer.key, attempts, error, exc_info=exc)
            values: dict[str, Any] = {"status": "failed", "fired_at": self.clock.now()}
        else:
            log.warning("timer %s failed (attempt %d), retrying: %r", timer.key, attempts, exc,
                        exc_info=not isinstance(exc, RETRYABLE))
            delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempts - 1)) * self.rng.uniform(0.5, 1.0)
            values = {"status": "pending", "due_at": self.clock.now() + timedelta(seconds=delay)}
        now = self.clock.now()
        async with self.db.session() as session:
            result = await session.exec(update(Timer).where(  # type: ignore[call-overload]
                Timer.id == timer.id, Timer.claimed_by == timer.claimed_by, Timer.status == "claimed")
                .values(attempts=attempts, last_error=error, **values))
            if attempts == 1 and not gave_up and result.rowcount == 1 and timer.incident_id:
                timeline.record(session, timer.incident_id, now, "work_retrying",
                                f"{describe(timer)} failed and will be retried: {error}", timer=timer.id)
            if gave_up and result.rowcount == 1 and timer.incident_id and timer.kind != PARKED_NOTICE:
                timeline.record(session, timer.incident_id, now, "work_parked",
                                f"{describe(timer)} failed {attempts} times and was parked: {error}",
                                timer=timer.id)
                await schedule(session, key=f"{PARKED_NOTICE}:{timer.id}:{now.isoformat()}", kind=PARKED_NOTICE,
                               due_at=now, incident_id=timer.incident_id, payload={"timer": timer.id})
        if self.metrics is not None:
            (self.metrics.timer_failures if gave_up else self.metrics.timer_retries).labels(timer.kind).inc()


def describe(timer: Timer) -> str:
    """What a row was for, in words a responder reads (no keys or kinds)."""
    if timer.kind == EVENT_KIND:
        listener = str(timer.payload.get("listener", "")).rsplit(".", 1)[-1].replace("_", " ")
        event = str(timer.payload.get("event", "")).replace("_", " ")
        return f"After \"{event}\": {listener}".replace(": on ", ": reacting to ")
    return {"warroom_open": "Opening the war room", "warroom_ready_followups": "The war room's first pages and posts",
            "page_delivery": "Sending a page",
            "decider_dm": "Telling a decider by DM", "triage_post": "The triage post"}.get(
                timer.kind, timer.kind.replace("_", " ").capitalize())
