"""Opening the war room: channel, topic, invites, pinned header, Phase 1 checklists, link back.

Every part is idempotent (the channel id is stored, messages are keyed, invites tolerate members), so a
failure part-way is recorded on the timeline and the whole thing simply runs again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import aiohttp
import httpx
from slack_sdk.errors import SlackApiError

from bot import logging_setup
from bot.engine import timeline, timers
from bot.engine.incidents import slug
from bot.engine.services import Services
from bot.engine.snapshot import Snapshot
from bot.store.models import Incident
from bot.views.header import header_blocks, header_text
from bot.views.step import step_blocks, step_text

log = logging.getLogger(__name__)
TOLERATED_INVITE_ERRORS = {"already_in_channel", "cant_invite_self", "user_not_found", "users_not_found",
                           "user_is_restricted", "user_is_bot"}
RETRY_DELAY = timedelta(seconds=5)


def channel_name(incident: Incident, label: str) -> str:
    prefix = "drill-" if incident.is_drill else "inc-"
    name = f"{prefix}{incident.declared_at:%Y%m%d-%H%M}-{slug(label)}"
    return name[:80].rstrip("-_")


class WarRoom:
    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def open(self, incident_id: str, response_url: str | None = None) -> bool:
        """Bring the war room to ready; True when it is. Failures are on the timeline and retried by timer."""
        logging_setup.incident_id.set(incident_id)
        try:
            async with self.svc.coord.lock(f"warroom:{incident_id}"):
                ready = await self._open(incident_id, response_url)
        except (TimeoutError, SlackApiError, httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            await self._failed(incident_id, exc)
            return False
        if ready:
            snap = await self.svc.snapshot(incident_id, with_holders=False)
            await self.svc.events.emit("war_room_ready", incident_id=incident_id)
            await self.svc.events.emit("phase_started", incident_id=incident_id, phase_id=snap.incident.phase_id)
            await self.svc.events.emit("moment", incident_id=incident_id, moment="declared")
        return ready

    async def _open(self, incident_id: str, response_url: str | None) -> bool:
        snap = await self.svc.snapshot(incident_id)
        inc = snap.incident
        if inc.data.get("war_room_ready"):
            return False
        people_task = asyncio.ensure_future(self._people(snap))  # role look-ups overlap the channel creation
        if inc.channel_id is None:
            await self._create_channel(inc, snap)
        assert inc.channel_id is not None
        people = await people_task
        await asyncio.gather(
            self._invite(inc, people),
            self.svc.slack.call("conversations.setTopic", channel=inc.channel_id, topic=self._topic(snap)),
            self.svc.slack.call("conversations.setPurpose", channel=inc.channel_id,
                                purpose=f"War room for {inc.id}: {inc.title}"[:250]),
            self._post_header(snap),
            self._link_back(inc, response_url),
        )
        header = await self.svc.slack.message_ref(inc.id, "header")
        phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else snap.procedure.phases[0]
        await asyncio.gather(self._pin(inc, header.ts if header else None), self.post_step(snap, phase.steps[0].id))
        await asyncio.gather(*(self.post_step(snap, s.id) for s in phase.steps[1:]))
        await self._mark(inc.id, "war_room_ready", "war_room_ready", "War room ready")
        return True

    async def _create_channel(self, inc: Incident, snap: Snapshot) -> None:
        label = inc.trigger_id or (snap.procedure.scenario.id if snap.procedure.scenario else "manual")
        base = channel_name(inc, label)
        for attempt in range(1, 20):
            name = base if attempt == 1 else f"{base[:76]}-{attempt}"
            try:
                response = await self.svc.slack.call("conversations.create", name=name)
                break
            except SlackApiError as exc:
                if exc.response.get("error") != "name_taken":
                    raise
        else:
            raise RuntimeError(f"no free channel name for {base}")
        inc.channel_id, inc.channel_name = response["channel"]["id"], response["channel"]["name"]
        async with self.svc.db.session() as session:
            row = await session.get(Incident, inc.id)
            assert row is not None
            row.channel_id, row.channel_name = inc.channel_id, inc.channel_name
            timeline.record(session, inc.id, self.svc.clock.now(), "channel_created",
                            f"Channel #{inc.channel_name} created", channel=inc.channel_id)

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

    def _topic(self, snap: Snapshot) -> str:
        inc, level = snap.incident, snap.runbook.level(snap.incident.level)
        drill = "DRILL · " if inc.is_drill else ""
        return f"{drill}{level.title} rollback · {inc.title} · RTO {snap.runbook.objectives.rto_minutes:g} min"[:250]

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
            jobs.append(self.svc.slack.update_message(incident_id, "header", header_text(snap), header_blocks(snap)))
        for step_id in steps or []:
            step = snap.procedure.step(step_id)
            jobs.append(self.svc.slack.update_message(incident_id, f"step:{step_id}",
                                                      step_text(snap, step), step_blocks(snap, step)))
        await asyncio.gather(*jobs)

    async def thread_ts(self, incident_id: str) -> tuple[str, str] | None:
        """Channel and ts of the header: the incident thread hangs under it."""
        ref = await self.svc.slack.message_ref(incident_id, "header")
        return (ref.channel, ref.ts) if ref else None

    async def _mark(self, incident_id: str, flag: str, kind: str, text: str) -> None:
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id)
            assert row is not None
            row.data = {**row.data, flag: True}
            timeline.record(session, incident_id, self.svc.clock.now(), kind, text)

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
