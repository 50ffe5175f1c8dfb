"""Where the real PostgreSQL and Redis are: on our machines and in CI they must be there; elsewhere tests skip."""

from __future__ import annotations

import os
import socket

import pytest

PG_URL = os.environ.get("ROLLBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("ROLLBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip with a reason on a user's machine; fail in CI, where the service must run."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if os.environ.get("CI"):
        pytest.fail(f"{message}, and CI must run these tests")
    pytest.skip(f"{message}: start it to run this test")


def require_postgres() -> str:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return PG_URL


def require_redis() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL
