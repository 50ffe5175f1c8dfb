"""Helpers for the approvals end-to-end tests: declare over /rollback, find and click the approval messages."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import select

from bot.store.models import ApprovalRequest, Incident, TimelineEvent, Vote
from tests.support.harness import Harness


class EventLog:
    """Counts the domain events the bot emits (a listener like any other engine module's)."""

    def __init__(self, h: Harness, *names: str) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []
        for name in names:
            h.bot.svc.events.on(name, self._listener(name), name="test.event_log")

    def _listener(self, name: str) -> Any:
        async def record(**kwargs: Any) -> None:
            self.seen.append((name, kwargs))
        return record

    def count(self, name: str) -> int:
        return sum(1 for n, _ in self.seen if n == name)

    def of(self, name: str) -> list[dict[str, Any]]:
        return [kw for n, kw in self.seen if n == name]


async def declare(h: Harness, level: str, user: str = "U500OC01") -> Incident:
    delivery = await h.command(user, f"start --level {level} checkout errors after deploy")
    assert delivery["status"] == 200
    incident = await h.only_incident()
    assert incident.level == level and incident.channel_id
    return incident


async def refreshed(h: Harness, incident_id: str) -> Incident:
    async with h.bot.db.session() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None
        return incident


async def message(h: Harness, incident: Incident, key: str) -> dict[str, Any]:
    """The sandbox's copy of a keyed message (top level or in a thread)."""
    ref = await h.bot.svc.slack.message_ref(incident.id, key)
    assert ref is not None, f"no {key} message"
    assert incident.channel_id
    for root in h.messages(incident.channel_id):
        for m in [root, *root.get("replies", [])]:
            if m["ts"] == ref.ts:
                return m
    raise AssertionError(f"{key} message {ref.ts} not in the sandbox")


def action_ids(msg: dict[str, Any]) -> list[str]:
    return [e.get("action_id", "") for b in msg.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


async def click(h: Harness, incident: Incident, key: str, user: str, action_id: str, **kw: Any) -> dict[str, Any]:
    msg = await message(h, incident, key)
    assert incident.channel_id
    return await h.click(user, incident.channel_id, msg["ts"], action_id=action_id, **kw)


def ephemerals(h: Harness, user: str) -> list[str]:
    return [m["text"] for m in h.state()["ephemerals"].get(user, [])]


async def rollback_request(h: Harness, incident_id: str) -> ApprovalRequest:
    request = await h.bot.approvals.rollback_request(incident_id)
    assert request is not None
    return request


async def votes(h: Harness, request_id: str) -> list[Vote]:
    return await h.bot.approvals.votes(request_id)


async def kinds(h: Harness, incident_id: str) -> Counter[str]:
    async with h.bot.db.session() as session:
        rows = (await session.exec(select(TimelineEvent.kind).where(TimelineEvent.incident_id == incident_id))).all()
    return Counter(rows)


async def timeline_texts(h: Harness, incident_id: str, kind: str) -> list[str]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent.text).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == kind))).all())
