"""Redis stopped mid-incident: the coordinator falls back to in-process work, the bot keeps going on one
replica, and Redis is used again once it returns. A Redis of the test's own, on its own port, is stopped."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.core.clock import FakeClock
from bot.core.coord_redis import RECHECK_S, RedisCoordinator
from bot.core.metrics import Metrics
from tests.support.harness import harness

REDIS_SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed (Debian: redis-server)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OwnRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):  # bounded: up to 20 s for the server to listen
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                import time

                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis(_free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_the_coordinator_works_in_process_while_redis_is_down_and_uses_redis_again_after(
        own_redis: OwnRedis) -> None:
    clock = FakeClock()
    coord = RedisCoordinator(own_redis.url, "t:", monotonic=clock.monotonic)
    coord.metrics = Metrics()
    direct = Redis.from_url(own_redis.url, decode_responses=True)
    assert await coord.hit("k", 60) == 1
    assert await direct.get("t:hit:k") == "1", "Redis holds the count while it is up"
    own_redis.stop()
    # Every operation still answers, from the in-process fallback.
    assert await coord.hit("k", 60) == 1
    assert await coord.first_time("event:1", 60) is True and await coord.first_time("event:1", 60) is False
    async with coord.lock("warroom:x"):
        pass
    await coord.cache_set("roles", ["U1"], 60)
    assert await coord.cache_get("roles") == ["U1"]
    assert coord.down_since is not None and not await coord.ping()
    metrics = coord.metrics.render().decode()
    assert "rollbot_redis_up 0.0" in metrics and "rollbot_redis_fallbacks_total 1.0" in metrics, \
        "one failed attempt; later calls skip Redis until the re-check"
    own_redis.start()
    await direct.aclose()
    direct = Redis.from_url(own_redis.url, decode_responses=True)
    clock.advance(RECHECK_S + 1)
    assert await coord.hit("after", 60) == 1
    assert await direct.get("t:hit:after") == "1", "back on Redis once it returned"
    assert coord.down_since is None and "rollbot_redis_up 1.0" in coord.metrics.render().decode()
    await direct.aclose()
    await coord.close()


async def test_the_bot_keeps_working_through_a_redis_outage(tmp_path: Path, own_redis: OwnRedis) -> None:
    """An incident declared with Redis up; Redis stops; the decision is approved and a note is added (locks,
    dedup and rate limits in-process); Redis returns; the rest of the incident goes on."""
    # The bot's Slack pacing is on, so every Slack call goes through the coordinator's rate counts.
    async with harness(tmp_path, REDIS_URL=own_redis.url, ROLLBOT_SLACK_RATE_SCALE="1") as h:
        await h.command("U500OC01", "start payment --level immediate")
        incident = await h.only_incident()
        assert incident.channel_id
        own_redis.stop()
        decision = next(m for m in h.messages(incident.channel_id) if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id, decision["ts"], text="Approve rollback")
        assert (await h.only_incident()).decision == "approved", "decided while Redis is down"
        await h.command("U100TL01", "note the payment provider confirmed the outage", channel=incident.channel_id)
        own_redis.start()
        await asyncio.sleep(0)
        # Past the recheck time and the header's minute: its refresh is a Slack call, counted through Redis.
        await h.advance(max(RECHECK_S + 1, 61))
        await h.command("U100TL01", "note Redis is back", channel=incident.channel_id)
        from sqlmodel import select

        from bot.store.models import TimelineEvent

        async with h.bot.db.session() as session:
            notes = [e.text for e in (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "note"))).all()]
        assert any("payment provider" in n for n in notes) and any("Redis is back" in n for n in notes), notes
        coord = h.bot.svc.coord
        assert isinstance(coord, RedisCoordinator) and coord.down_since is None, "Redis picked up again"
