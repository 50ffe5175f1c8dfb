"""A key claimed once, ever, across processes: the primary key of `claims` decides the race."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import Claim


async def claim_once(session: AsyncSession, key: str, owner: str, at: datetime) -> bool:
    """True for the one caller that inserts `key`; False for everyone after (no exception, no rollback)."""
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Claim).values(key=key, owner=owner, at=at).on_conflict_do_nothing(index_elements=["key"])
    result = await session.exec(statement)  # type: ignore[call-overload]
    return bool(result.rowcount)
