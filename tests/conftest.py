from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.db import Database
from tests.support.db import fresh_database

SHARED = Path(__file__).resolve().parents[2] / "shared"
# The sample rollback scripts pace themselves like real ones; tests run them 50x faster.
os.environ.setdefault("ROLLBOT_SCRIPT_SPEED", "50")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database, once on SQLite and once on PostgreSQL."""
    async with fresh_database(request.param, tmp_path) as (database, _url, _schema):
        yield database


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """End-to-end runs (marked slow) first: `make test` spreads tests over two workers, and a long run started last
    would leave one worker busy while the other sits idle. The sort is stable, so the order is the same on every
    worker, as pytest-xdist requires."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
