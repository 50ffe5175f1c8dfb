"""The incident timeline: every step of the response, written in the same transaction as the change it records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import TimelineEvent


def record(session: AsyncSession, incident_id: str, at: datetime, kind: str, text: str,
           actor: str | None = None, **data: Any) -> TimelineEvent:
    event = TimelineEvent(incident_id=incident_id, at=at, kind=kind, text=text, actor=actor, data=data)
    session.add(event)
    return event


async def events(session: AsyncSession, incident_id: str) -> list[TimelineEvent]:
    rows = await session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(TimelineEvent.at, TimelineEvent.id)
    )
    return list(rows.all())
