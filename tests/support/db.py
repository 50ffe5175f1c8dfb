"""Fresh, migrated databases for tests: a SQLite file, or a private schema in the shared PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.store.db import Database, async_url
from tests.support.services import require_postgres


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[tuple[Database, str, str | None]]:
    """Yields (database, url, schema), migrated to head; dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'rollbot-test.db'}"
        db = Database(url)
        await db.upgrade()
        try:
            yield db, url, None
        finally:
            await db.dispose()
        return
    url = require_postgres()
    schema = f"rb_test_{secrets.token_hex(4)}"
    admin = create_async_engine(async_url(url))
    async with admin.begin() as conn:
        await conn.execute(text(f"CREATE SCHEMA {schema}"))
    db = Database(url, schema=schema)
    try:
        await db.upgrade()
        yield db, url, schema
    finally:
        await db.dispose()
        async with admin.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        await admin.dispose()
