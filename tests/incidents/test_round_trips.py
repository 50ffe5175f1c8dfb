"""The war room is ready in one dependent Slack round trip per message it posts in order (header, Phase 1's
steps) plus the channel, everything else beside them, and an approval never re-renders the header twice.

Nothing here is timed. The sandbox holds every Web API call until the bot has nothing left to do but wait for
Slack's answers, then answers the whole wave: the number of waves before "ready" is the number of round trips
that depend on each other, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.decision.views import APPROVE
from bot.sandbox.server import SandboxServer
from bot.store.models import Incident, SlackMessage, Timer
from tests.decision.support import click, declare
from tests.incidents.test_war_room import PAYMENT_ALERT, assert_war_room, post_alert
from tests.support.harness import Harness, harness

QUIET_LOOKS = 3  # the bot must look idle this many times in a row (20 ms apart) before a wave is answered


class Waves:
    """Holds the sandbox's answers; releases them a wave at a time."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.held: list[tuple[str, asyncio.Event]] = []
        self.waves: list[list[str]] = []
        sb: SandboxServer = h.sb
        answer = sb._answer  # noqa: SLF001 (the test wraps the sandbox's answering)

        async def held(request: Any, method: str, args: dict[str, Any]) -> Any:
            gate = asyncio.Event()
            self.held.append((method, gate))
            await gate.wait()
            return await answer(request, method, args)

        sb._answer = held  # type: ignore[method-assign]  # noqa: SLF001
        self._restore = lambda: setattr(sb, "_answer", answer)

    def stop(self) -> None:
        """Answer everything at once from now on."""
        self._restore()
        for _, gate in self.held:
            gate.set()
        self.held = []

    def _only_waiting(self) -> bool:
        """Every call the bot started has reached the sandbox (or none is left), and no database work is under
        way."""
        queue = self.h.bot.svc.slack.client.queue  # type: ignore[attr-defined]
        pool = self.h.bot.db.engine.sync_engine.pool
        checked_out = pool.checkedout() if hasattr(pool, "checkedout") else 0
        return queue.running == len(self.held) and checked_out == 0

    async def quiet(self) -> None:
        looks = 0
        for _ in range(3000):  # bounded: a bot that never settles fails the test instead of hanging it
            await asyncio.sleep(0.02)
            looks = looks + 1 if self._only_waiting() else 0
            if looks >= QUIET_LOOKS:
                return
        queue = self.h.bot.svc.slack.client.queue  # type: ignore[attr-defined]
        raise AssertionError(f"the bot never settled: {queue.running} calls running, held {[m for m, _ in self.held]}")

    def release(self) -> None:
        wave, self.held = self.held, []
        self.waves.append(sorted(method for method, _ in wave))
        for _, gate in wave:
            gate.set()


async def test_an_alerts_war_room_is_ready_in_four_dependent_round_trips(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        waves = Waves(h)
        status, body = await post_alert(h, "alertmanager", PAYMENT_ALERT)
        assert status == 202, "the alert is answered before any war-room work (no Slack call is answered yet)"
        incident_id = body["opened"][0]

        async def ready() -> bool:
            async with h.bot.db.session() as session:
                incident = await session.get(Incident, incident_id)
            return bool(incident and incident.data.get("war_room_ready"))

        for _ in range(10):
            await waves.quiet()
            if await ready():
                break
            waves.release()
        waves.stop()
        phase1 = h.bot.svc.runbook.phases[0]
        assert waves.waves[0] == ["conversations.create"]
        # The topic follows the phase (bot/incidents/channel_dressing.py): set once the room is ready, off this path.
        assert waves.waves[1] == sorted(["conversations.invite", "conversations.setPurpose", "chat.postMessage"]), \
            "the header goes out with the invites and the purpose"
        assert waves.waves[2] == ["chat.postMessage", "pins.add"], "Step 1 beside the pin"
        assert waves.waves[3:] == [["chat.postMessage"]] * (len(phase1.steps) - 1), "each later step after the last"
        assert len(waves.waves) == 2 + len(phase1.steps) == 4, waves.waves
        await h.settle()
        async with h.bot.db.session() as session:
            incident = await session.get(Incident, incident_id)
        assert incident is not None
        channel = assert_war_room(h, incident)
        steps = [m["text"] for m in channel["messages"] if m.get("text", "").startswith("Step ")]
        assert steps == sorted(steps, key=lambda t: [int(n) for n in t.split(":")[0][5:].split(".")]), \
            "the steps show in order"


async def test_an_approval_never_re_renders_the_header_twice_in_a_row(tmp_path: Path) -> None:
    """Approving renders the header once with the decision; a later edit (the snapshot that starts by itself
    ticking its step) shows something new, never the same header again."""
    async with harness(tmp_path) as h:
        incident = await declare(h, "immediate")
        async with h.bot.db.session() as session:
            header = (await session.exec(select(SlackMessage).where(
                SlackMessage.incident_id == incident.id, SlackMessage.key == "header"))).one()
        before = len(h.sb.calls)
        await click(h, incident, "decision", "U100TL01", APPROVE)
        await h.settle()
        updates = [c["args"].get("blocks") for c in h.sb.calls[before:]
                   if c["method"] == "chat.update" and c["args"].get("ts") == header.ts]
        assert updates, "the header shows the decision"
        assert all(a != b for a, b in zip(updates, updates[1:], strict=False)), "no edit repeats the one before"


async def test_the_open_promise_does_not_wait_on_a_war_room_this_process_is_opening(tmp_path: Path) -> None:
    """The `warroom_open` timer falls due while this process is still opening the room (its Slack calls held
    here, as behind a rate limit): the tick does not wait for it, holding a timer slot, but looks again later."""
    async with harness(tmp_path) as h:
        waves = Waves(h)
        status, body = await post_alert(h, "alertmanager", PAYMENT_ALERT)
        assert status == 202
        incident_id = body["opened"][0]
        await waves.quiet()
        assert [m for m, _ in waves.held] == ["conversations.create"], "the opening is under way, its call held"
        h.clock.advance(21)
        fired = await asyncio.wait_for(h.bot.svc.timers.tick(), timeout=30)
        assert fired >= 1 and [m for m, _ in waves.held] == ["conversations.create"], "the tick came back"
        async with h.bot.db.session() as session:
            again = (await session.exec(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind == "warroom_open", Timer.status == "pending"))).all()
        assert len(again) == 1 and again[0].due_at > h.clock.now()
        waves.stop()
        await h.settle()
        async with h.bot.db.session() as session:
            incident = await session.get(Incident, incident_id)
            pending = (await session.exec(select(Timer).where(
                Timer.incident_id == incident_id, Timer.kind == "warroom_open", Timer.status == "pending"))).all()
        assert incident is not None and incident.data.get("war_room_ready") and not pending
