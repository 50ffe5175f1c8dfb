"""Engine and sessions: SQLite by default, PostgreSQL by URL; the async driver is ours to choose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def async_url(url: str) -> str:
    """`sqlite:///x.db` -> aiosqlite, `postgresql://` -> asyncpg; explicit drivers are kept."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres") and "+" not in parsed.drivername:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


class Database:
    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = async_url(url)
        self.schema = schema
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine: AsyncEngine = self._make_engine()
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        # Single-statement reads on a second engine in autocommit: no BEGIN (on SQLite no BEGIN IMMEDIATE, so they
        # never queue behind a writer; WAL readers see the last commit), no ROLLBACK, no pre-ping round trip.
        self.read_engine: AsyncEngine = self._make_read_engine()

    def _make_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        elif self.schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _serialize_sqlite_writers(engine)
        return engine

    def _make_read_engine(self) -> AsyncEngine:
        kwargs: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": 30}
        elif self.schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": self.schema}}
        return create_async_engine(self.url, **kwargs)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """One read statement outside any transaction (the alert intake's repeat look-up); never for writes."""
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def rehearsal(self) -> AsyncIterator[AsyncSession]:
        """A unit of work that is always rolled back (start-up's rehearsal of the first alert's statements)."""
        async with self.sessions() as session:
            await session.begin()
            try:
                yield session
            finally:
                await session.rollback()

    async def upgrade(self) -> None:
        """Apply Alembic migrations to head (alembic drives its own event loop, so it runs in a thread)."""
        await asyncio.to_thread(upgrade_to_head, self.url, self.schema)

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.read_engine.dispose()


def _serialize_sqlite_writers(engine: AsyncEngine) -> None:
    """BEGIN IMMEDIATE: concurrent writers wait on the busy timeout instead of failing a read-to-write upgrade."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(url: str, schema: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = async_url(url)
    cfg.attributes["schema"] = schema
    return cfg


def upgrade_to_head(url: str, schema: str | None = None) -> None:
    from alembic import command

    command.upgrade(alembic_config(url, schema), "head")
