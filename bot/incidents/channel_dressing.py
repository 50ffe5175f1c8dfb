"""The incident channel's topic and bookmarks, kept in step with the incident.

The topic follows the phase; the bookmarks are the alert's source link, the status page and, once written, the
post-incident report. What Slack was last told is kept on the incident (`data.channel_topic`,
`data.bookmarks`), so a sync calls Slack only for what changed. Syncs run when the phase changes, on every
header tick (the durable once-a-minute timer, so a Slack failure is retried until it succeeds) and when the
report is uploaded.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.core.services import Services
from bot.incidents.channel_view import channel_bookmarks, channel_topic
from bot.store.models import Incident, ReceivedAlert

log = logging.getLogger(__name__)


class ChannelDressing:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        svc.events.on("phase_started", self._on_change, name="channel_dressing.on_phase_started")
        svc.events.on("decided", self._on_change, name="channel_dressing.on_decided")
        svc.events.on("closed", self._on_change, name="channel_dressing.on_closed")

    async def _on_change(self, incident_id: str, **_: Any) -> None:
        await self.sync(incident_id)

    async def sync(self, incident_id: str) -> bool:
        """Tell Slack what changed; True when the channel matches the incident. A failure is logged and left
        for the next header tick."""
        try:
            async with self.svc.coord.lock(f"channel-dressing:{incident_id}"):
                await self._sync(incident_id)
            return True
        except (SlackApiError, httpx.HTTPError, TimeoutError, OSError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else repr(exc)
            log.warning("channel topic/bookmarks for %s not updated (%s); the next header tick retries",
                        incident_id, error)
            return False

    async def _sync(self, incident_id: str) -> None:
        snap = await self.svc.snapshot(incident_id, with_holders=False)
        inc = snap.incident
        if inc.channel_id is None or not inc.data.get("war_room_ready"):
            return
        topic = channel_topic(snap)
        if inc.data.get("channel_topic") != topic:
            await self.svc.slack.call("conversations.setTopic", channel=inc.channel_id, topic=topic)
            await self._store(incident_id, channel_topic=topic)
        stored: dict[str, dict[str, str]] = dict(inc.data.get("bookmarks") or {})
        wanted = channel_bookmarks(snap, await self._alert_url(incident_id), inc.data.get("report_url"))
        for key, (title, link) in wanted.items():
            have = stored.get(key)
            if have and have.get("title") == title and have.get("link") == link:
                continue
            if have and have.get("id"):
                try:
                    answer = await self.svc.slack.call("bookmarks.edit", channel_id=inc.channel_id,
                                                       bookmark_id=have["id"], title=title, link=link)
                except SlackApiError as exc:
                    if exc.response.get("error") != "not_found":
                        raise
                    answer = None  # someone removed it in Slack: add it again
            else:
                answer = None
            if answer is None:
                answer = await self.svc.slack.call("bookmarks.add", channel_id=inc.channel_id, title=title,
                                                   type="link", link=link)
            stored[key] = {"id": str((answer.get("bookmark") or {}).get("id", "")), "title": title, "link": link}
            await self._store(incident_id, bookmarks=dict(stored))

    async def _alert_url(self, incident_id: str) -> str | None:
        """The source link (Alertmanager's generatorURL, Grafana's panel) of the first alert that has one."""
        async with self.svc.db.session() as session:
            rows = (await session.exec(select(ReceivedAlert).where(ReceivedAlert.incident_id == incident_id)
                                       .order_by(ReceivedAlert.id).limit(20))).all()  # type: ignore[arg-type]
        return next((str(r.payload["url"]) for r in rows if (r.payload or {}).get("url")), None)

    async def _store(self, incident_id: str, **data: Any) -> None:
        async with self.svc.db.session() as session:
            row = await session.get(Incident, incident_id, with_for_update=True)
            assert row is not None
            row.data = {**row.data, **data}
            session.add(row)
