"""Opening the war room: channel, topic, invites, pinned header, Phase 1 checklists, link back.

Every part is idempotent (the channel id is stored, messages are keyed, invites tolerate members), so a
failure part-way is recorded on the timeline and the whole thing simply runs again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError

from bot.core import logging_setup, timeline, timers
from bot.core.services import Services
from bot.core.snapshot import Snapshot
from bot.incidents.channel_dressing import ChannelDressing
from bot.incidents.channel_naming import channel_name
from bot.incidents.header import header_blocks, header_text
from bot.incidents.service import DECLARING
from bot.slack.blocks import escape
from bot.steps.views import step_blocks, step_text
from bot.store.models import Incident

log = logging.getLogger(__name__)
TOLERATED_INVITE_ERRORS = {"already_in_channel", "cant_invite_self", "user_not_found", "users_not_found",
                           "user_is_restricted", "user_is_bot"}
RETRY_DELAY = timedelta(seconds=5)


# The war room is promised durably: a timer written with the incident opens it if its process dies first, and
# one written with "ready" tells the rest of the bot if the process dies before it did.
OPEN_TIMER = "warroom_open"
READY_TIMER = "warroom_ready_followups"
OPEN_GRACE = timedelta(seconds=20)
HEADER_TICK = "header_tick"
HEADER_EVERY = timedelta(minutes=1)  # the header's clock stays true to the minute; one edit a minute is far inside
# chat.update's limit


class WarRoom:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._header_at: dict[str, datetime] = {}  # when this process last rendered each header (to skip ticks)
        self.dressing = ChannelDressing(svc)  # the channel's topic and bookmarks
        self._opening: set[str] = set()  # incidents whose war room this process is opening right now
        self._wanted: dict[str, tuple[bool, set[str]]] = {}  # re-renders requested, not started: header?, steps
        self._rendering: set[str] = set()  # incidents with a requested re-render under way
        svc.timers.on(HEADER_TICK, self.on_header_tick)
        svc.timers.on(OPEN_TIMER, self.on_open_timer)
        svc.timers.on(READY_TIMER, self.on_ready_timer)
        svc.events.on("declared", self._promise_war_room, name="warroom.promise_war_room", inline=True)
        svc.events.on("war_room_ready", self._start_header_ticks, name="warroom.start_header_ticks")

    async def _promise_war_room(self, session: Any, incident: Incident) -> None:
        """Written with the incident: if the process that declared it dies before the war room is up, this timer
        opens it after a restart (or on another replica). The normal path cancels it once the room is ready."""
        await timers.schedule(session, key=f"{incident.id}:{OPEN_TIMER}", kind=OPEN_TIMER,
                              due_at=incident.declared_at + OPEN_GRACE, incident_id=incident.id)

    async def on_open_timer(self, timer: Any) -> None:
        incident_id = timer.incident_id or ""
        if incident_id in self._opening:
            # This process is opening it right now (waiting for Slack's rate limits, say): waiting on its lock
            # here would hold a timer slot for minutes and make every other timer late. Look again later.
            async with self.svc.db.session() as session:
                now = self.svc.clock.now()
                await timers.schedule(session, key=f"{incident_id}:{OPEN_TIMER}:{now.isoformat()}", kind=OPEN_TIMER,
                                      due_at=now + OPEN_GRACE, incident_id=incident_id)
            return
        await self.open(incident_id)
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is not None and incident.status == "open" and not incident.data.get("war_room_ready"):
            raise RuntimeError("the war room is not ready yet")  # the timer service retries with backoff

    async def on_ready_timer(self, timer: Any) -> None:
        """The war room was marked ready but its process died before telling the others (pages, Phase 1's
        automatic actions, the first comms): tell them now. Each listener is idempotent."""
        await self._announce_ready(timer.incident_id or "")

    async def _announce_ready(self, incident_id: str) -> None:
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        events = self.svc.events
        async with self.svc.db.session() as session:  # the outbox rows replace the promise, in one transaction
            out = [await events.emit("war_room_ready", session, change=incident_id, incident_id=incident_id),
                   await events.emit("phase_started", session, change=f"{incident_id}:{snap.incident.phase_id}",
                                     incident_id=incident_id, phase_id=snap.incident.phase_id),
                   await events.emit("moment", session, change=f"{incident_id}:declared", incident_id=incident_id,
                                     moment="declared")]
            await timers.cancel(session, incident_id, kinds=[READY_TIMER])
        await events.deliver(*out)

    async def _start_header_ticks(self, incident_id: str, **_: object) -> None:
        async with self.svc.db.session() as session:
            await self._schedule_header_tick(session, incident_id, 1)

    async def _schedule_header_tick(self, session: Any, incident_id: str, n: int) -> None:
        incident = await session.get(Incident, incident_id)
        if incident is None or incident.status != "open":
            return
        # A minute that passed before the room was ready (or while this tick waited) is owed no tick of its own:
        # the next is the coming minute. Keyed by the minute, so ticks that catch up converge on one chain.
        n = max(n, (self.svc.clock.now() - incident.declared_at) // HEADER_EVERY + 1)
        await timers.schedule(session, key=f"{incident_id}:{HEADER_TICK}:{n}", kind=HEADER_TICK,
                              due_at=incident.declared_at + n * HEADER_EVERY, incident_id=incident_id,
                              payload={"n": n})

    async def on_header_tick(self, timer: Any) -> None:
        """Once a minute while the incident is open: the header's elapsed time, and the next tick (keyed by its
        number, so a repeated tick schedules nothing twice)."""
        incident_id = timer.incident_id or ""
        async with self.svc.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or incident.status != "open":
                return
            await self._schedule_header_tick(session, incident_id, int(timer.payload.get("n", 0)) + 1)
        last = self._header_at.get(incident_id)
        # Re-rendered for another reason within the minute: no extra edit.
        render = last is None or self.svc.clock.now() - last >= HEADER_EVERY
        self.svc.background(self._dress_and_render(incident_id, render))

    async def _dress_and_render(self, incident_id: str, render: bool) -> None:
        """The header tick's Slack work, after the tick (whose own work is the next tick): the topic and
        bookmarks if a change has not reached Slack (a failure is logged and left for the next tick), then the
        header's clock."""
        await self.dressing.sync(incident_id)
        if render:
            self.request_refresh(incident_id)

    async def open(self, incident_id: str, response_url: str | None = None) -> bool:
        """Bring the war room to ready; True when it is. Failures are on the timeline and retried by timer."""
        logging_setup.incident_id.set(incident_id)
        self._opening.add(incident_id)
        try:
            async with self.svc.coord.lock(f"warroom:{incident_id}"):
                ready = await self._open(incident_id, response_url)
        except (TimeoutError, SlackApiError, httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            await self._failed(incident_id, exc)
            return False
        finally:
            self._opening.discard(incident_id)
        if ready:
            await self._announce_ready(incident_id)
        return ready

    async def _open(self, incident_id: str, response_url: str | None) -> bool:
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id)
        if row is None or row.status == DECLARING or row.data.get("war_room_ready"):
            return False  # (declaring: its rest is still owed; the war-room promise it schedules comes back)
        # The channel needs only the incident's row: its creation starts first, the snapshot and the role
        # look-ups overlap it.
        creating = asyncio.ensure_future(self._create_channel(row)) if row.channel_id is None else None
        try:
            snap = await self.svc.snapshot(incident_id)
        except BaseException:
            if creating is not None:
                creating.cancel()
            raise
        inc = snap.incident
        people_task = asyncio.ensure_future(self._people(snap))
        stored = None
        if creating is not None:
            stored = await creating
            inc.channel_id, inc.channel_name = row.channel_id, row.channel_name
        assert inc.channel_id is not None
        people = await people_task
        phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else snap.procedure.phases[0]
        # The channel; then, at once, everything that needs only the channel, the channel's id stored meanwhile
        # (a process dying before that is covered: its channel is adopted by name). The channel's messages go
        # one after another, each after Slack answered the one before: Slack orders messages as they arrive, and
        # posted side by side Step 2 landed above Step 1 (tests/incidents/test_round_trips.py).
        await asyncio.gather(
            self._invite(inc, people),
            self.svc.slack.call("conversations.setPurpose", channel=inc.channel_id,
                                purpose=f"War room for {inc.id}: {escape(inc.title)}"[:250]),
            self._post_in_order(snap, [s.id for s in phase.steps]),
            self._link_back(inc, response_url),
            *([stored] if stored is not None else []),
        )
        await self._mark(inc.id, "war_room_ready", "war_room_ready", "War room ready")
        await self.dressing.sync(inc.id)
        return True

    async def _post_in_order(self, snap: Snapshot, step_ids: list[str]) -> None:
        """The header, then the steps in order, the pin beside the first step (it needs the header's ts)."""
        await self._post_header(snap)
        header = await self.svc.slack.message_ref(snap.incident.id, "header")

        async def steps() -> None:
            for step_id in step_ids:
                await self.post_step(snap, step_id)

        await asyncio.gather(self._pin(snap.incident, header.ts if header else None), steps())

    async def _create_channel(self, inc: Incident) -> asyncio.Future[None]:
        """Create (or adopt) the channel; returns the write of its id to the store, under way."""
        label = inc.trigger_id or inc.scenario_id or "manual"
        base = channel_name(inc, label)
        for attempt in range(1, 20):
            name = base if attempt == 1 else f"{base[:76]}-{attempt}"
            try:
                channel = (await self.svc.slack.call("conversations.create", name=name))["channel"]
                break
            except SlackApiError as exc:
                if exc.response.get("error") != "name_taken":
                    raise
                # The name is this incident's own: a process that died after creating the channel and before
                # storing its id left it behind. Adopt it rather than leave an orphan with only the bot in it.
                mine = await self._own_channel(name) if attempt == 1 else None
                if mine is not None:
                    channel = mine
                    break
        else:
            raise RuntimeError(f"no free channel name for {base}")
        inc.channel_id, inc.channel_name = channel["id"], channel["name"]
        return asyncio.ensure_future(self._store_channel(inc))

    async def _store_channel(self, inc: Incident) -> None:
        async with self.svc.db.session() as session:
            row = await session.get(Incident, inc.id)
            assert row is not None
            row.channel_id, row.channel_name = inc.channel_id, inc.channel_name
            timeline.record(session, inc.id, self.svc.clock.now(), "channel_created",
                            f"Channel #{inc.channel_name} created", channel=inc.channel_id)

    async def _own_channel(self, name: str) -> dict[str, Any] | None:
        """The channel called `name` if this bot created it (conversations.list, paged)."""
        cursor = ""
        for _ in range(50):  # bounded: 50 pages of 200 channels
            page = await self.svc.slack.call("conversations.list", types="public_channel", limit=200,
                                             exclude_archived=True, cursor=cursor)
            for channel in page.get("channels") or []:
                if channel.get("name") == name and channel.get("creator") == self.svc.slack.bot_user_id:
                    return dict(channel)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return None
        return None

    async def _people(self, snap: Snapshot) -> list[str]:
        runbook, inc = snap.runbook, snap.incident
        level = runbook.level(inc.level)
        roles = [*level.approval.roles, *level.page_roles, *runbook.incident_lead_roles,
                 *(s.owner for s in snap.procedure.steps())]
        held = await self.svc.roles.holders(list(roles), inc.id)
        people = list(dict.fromkeys(u for users in held.values() for u in users))
        if inc.declared_by.startswith("U") and inc.declared_by not in people:
            people.append(inc.declared_by)
        bot = self.svc.slack.bot_user_id
        return [p for p in people if p != bot]

    async def _invite(self, inc: Incident, people: list[str]) -> None:
        if not people:
            return
        invited: list[str] = []
        try:
            await self.svc.slack.call("conversations.invite", channel=inc.channel_id, users=",".join(people))
            invited = people
        except SlackApiError as exc:
            if exc.response.get("error") not in TOLERATED_INVITE_ERRORS:
                raise
            for user in people:  # one bad or present user fails a batch: go one by one
                try:
                    await self.svc.slack.call("conversations.invite", channel=inc.channel_id, users=user)
                    invited.append(user)
                except SlackApiError as one:
                    if one.response.get("error") not in TOLERATED_INVITE_ERRORS:
                        raise
                    if one.response.get("error") == "already_in_channel":
                        invited.append(user)
        await self.svc_note(inc.id, "invited", f"Invited {len(invited)} responders", users=invited)

    async def _post_header(self, snap: Snapshot) -> None:
        inc = snap.incident
        await self.svc.slack.put_message(inc.id, "header", inc.channel_id or "", header_text(snap), header_blocks(snap))

    async def _pin(self, inc: Incident, ts: str | None) -> None:
        if ts is None:
            return
        try:
            await self.svc.slack.call("pins.add", channel=inc.channel_id, timestamp=ts)
        except SlackApiError as exc:
            if exc.response.get("error") != "already_pinned":
                raise

    async def _link_back(self, inc: Incident, response_url: str | None) -> None:
        text = f"{'Drill' if inc.is_drill else 'Rollback incident'} *{inc.id}* declared: <#{inc.channel_id}>"
        if response_url:
            async with httpx.AsyncClient(timeout=10) as client:
                await client.post(response_url, json={"response_type": "in_channel", "text": text})
        elif inc.origin_channel_id:
            try:
                await self.svc.slack.call("chat.postMessage", channel=inc.origin_channel_id, text=text)
            except SlackApiError as exc:
                log.info("link back to %s failed: %s", inc.origin_channel_id, exc.response.get("error"))

    async def post_step(self, snap: Snapshot, step_id: str) -> None:
        step = snap.procedure.step(step_id)
        inc = snap.incident
        await self.svc.slack.put_message(inc.id, f"step:{step_id}", inc.channel_id or "",
                                         step_text(snap, step), step_blocks(snap, step))

    async def refresh(self, incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        """Re-render the header and the given step messages from the store."""
        snap = await self.svc.snapshot(incident_id)
        jobs: list[Any] = []
        if header:
            self._header_at[incident_id] = snap.now
            jobs.append(self.svc.slack.update_message(incident_id, "header", header_text(snap), header_blocks(snap)))
        for step_id in steps or []:
            step = snap.procedure.step(step_id)
            jobs.append(self.svc.slack.update_message(incident_id, f"step:{step_id}",
                                                      step_text(snap, step), step_blocks(snap, step)))
        await asyncio.gather(*jobs)

    def request_refresh(self, incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        """Re-render from the store without waiting for Slack: for timer handlers whose own work (the state
        change, its notices) is done, so that a re-render queued behind chat.update's tier (header refreshes go
        last) never holds the incident's next timer. Requests for one incident merge while one is under way; each
        render reads the store when it starts. A re-render lost to a crash is the next one's (the header's
        minute tick, the step's next change)."""
        header_wanted, steps_wanted = self._wanted.get(incident_id, (False, set()))
        self._wanted[incident_id] = (header_wanted or header, steps_wanted | set(steps or []))
        if incident_id not in self._rendering:
            self._rendering.add(incident_id)
            self.svc.background(self._render_wanted(incident_id))

    async def _render_wanted(self, incident_id: str) -> None:
        try:
            while (wanted := self._wanted.pop(incident_id, None)) is not None:
                try:
                    await self.refresh(incident_id, steps=sorted(wanted[1]), header=wanted[0])
                except Exception:  # Slack or the store failed: the next re-render of these messages shows it all
                    log.warning("re-render of %s failed", incident_id, exc_info=True)
        finally:
            self._rendering.discard(incident_id)

    async def thread_ts(self, incident_id: str) -> tuple[str, str] | None:
        """Channel and ts of the header: the incident thread hangs under it."""
        ref = await self.svc.slack.message_ref(incident_id, "header")
        return (ref.channel, ref.ts) if ref else None

    async def _mark(self, incident_id: str, flag: str, kind: str, text: str) -> None:
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id, with_for_update=True)
            assert row is not None
            row.data = {**row.data, flag: True}
            timeline.record(session, incident_id, now, kind, text)
            # Ready: no opening is owed any more, but what readiness starts is, until it has been announced.
            await timers.cancel(session, incident_id, kinds=[OPEN_TIMER])
            await timers.schedule(session, key=f"{incident_id}:{READY_TIMER}", kind=READY_TIMER,
                                  due_at=now + OPEN_GRACE, incident_id=incident_id)

    async def svc_note(self, incident_id: str, kind: str, text: str, **data: object) -> None:
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, self.svc.clock.now(), kind, text, **data)

    async def _failed(self, incident_id: str, exc: BaseException) -> None:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
        log.warning("war room %s: Slack failed part-way (%s); will retry", incident_id, error)
        now = self.svc.clock.now()
        async with self.svc.db.session() as session:
            timeline.record(session, incident_id, now, "slack_failure",
                            f"Slack failed while opening the war room ({error}); retrying", error=str(error))
            await timers.schedule(session, key=f"{incident_id}:warroom_retry:{now.isoformat()}",
                                  kind="warroom_retry", due_at=now + RETRY_DELAY, incident_id=incident_id)

    async def on_retry_timer(self, timer: Any) -> None:
        await self.open(timer.incident_id)
