"""Parked work made visible: a row that failed its last attempt (bot/core/timers.py) is posted in its incident's
thread with what failed, when and the error, and a Retry button an incident lead may press to put it back to
pending. The post is itself a timer (`parked_notice`), written with the parking, so it survives a crash too."""

from __future__ import annotations

from bot.core import authz, timeline, timers
from bot.core.errors import Refused
from bot.core.services import Services
from bot.incidents.parked_view import parked_blocks, parked_text
from bot.incidents.warroom import WarRoom
from bot.store.models import Timer

RETRY = "outbox_retry"


class Outbox:
    def __init__(self, svc: Services, warroom: WarRoom) -> None:
        self.svc = svc
        self.warroom = warroom
        svc.timers.on(timers.PARKED_NOTICE, self.on_parked_notice)

    @staticmethod
    def _key(row_id: int) -> str:
        return f"parked:{row_id}"  # one notice per row: parked again, it is re-rendered with the new failure

    async def on_parked_notice(self, notice: Timer) -> None:
        row_id = int(notice.payload["timer"])
        async with self.svc.db.session() as session:
            row = await session.get(Timer, row_id)
        if row is None or row.status != "failed" or not row.incident_id:
            return  # retried meanwhile
        where = await self.warroom.thread_ts(row.incident_id)
        if where is None:
            raise RuntimeError("the incident has no header to post under yet")  # retried by the timer service
        what = timers.describe(row)
        failed_at = row.fired_at or self.svc.clock.now()
        await self.svc.slack.put_message(row.incident_id, self._key(row_id), where[0],
                                         f":warning: {parked_text(what, failed_at, row.attempts, row.last_error or '')}",
                                         parked_blocks(what, failed_at, row.attempts, row.last_error or "", row_id),
                                         thread_ts=where[1])

    async def retry(self, incident_id: str, row_id: int, user: str) -> str:
        """An incident lead puts parked work back to pending; the answer is for them."""
        try:
            await authz.require(self.svc, RETRY, user, authz.Subject(incident_id))
        except Refused as exc:
            return str(exc)
        async with self.svc.db.session() as session:
            row = await session.get(Timer, row_id)
        if row is None or row.incident_id != incident_id:
            return "That work is not this incident's."
        failed_at, attempts, error = row.fired_at or self.svc.clock.now(), row.attempts, row.last_error or ""
        if await self.svc.timers.retry(row_id) is None:
            return "That work is no longer parked: it was retried already."
        now = self.svc.clock.now()
        what = timers.describe(row)
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, now, "work_retried", f"{what}: retried", actor=user, timer=row_id)
        await self.svc.slack.update_message(
            incident_id, self._key(row_id), f"{what}: retried",
            parked_blocks(what, failed_at, attempts, error, row_id, retried_by=user, retried_at=now))
        await self.svc.timers.tick()  # at once, not at the next tick
        return f"Retried: {what}."



