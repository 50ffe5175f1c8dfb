"""A timer handler's re-render is requested, not awaited: a header or step re-render waiting for chat.update's
tier (header refreshes go last) does not hold the handler, so the incident's next timer is not held either.
Requests for one incident merge while one is under way. Nothing is timed: the render waits on an asyncio.Event."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bot.incidents.warroom import WarRoom


def _war_room() -> WarRoom:
    svc: Any = SimpleNamespace(timers=SimpleNamespace(on=lambda *_: None),
                               events=SimpleNamespace(on=lambda *_, **__: None))
    return WarRoom(svc)


async def test_requests_return_at_once_and_merge_while_a_render_waits_for_slack() -> None:
    room = _war_room()
    tasks: list[asyncio.Task[Any]] = []
    room.svc.background = lambda coro: tasks.append(asyncio.ensure_future(coro))
    slack_answered = asyncio.Event()
    renders: list[tuple[str, list[str], bool]] = []
    started = asyncio.Event()

    async def refresh(incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        renders.append((incident_id, list(steps or []), header))
        started.set()
        await slack_answered.wait()

    room.refresh = refresh  # type: ignore[method-assign]
    room.request_refresh("inc-a")  # returns at once: nothing awaited
    await asyncio.wait_for(started.wait(), timeout=30)
    room.request_refresh("inc-a", steps=["s1"], header=False)  # while the first waits for chat.update's window
    room.request_refresh("inc-a", steps=["s2"], header=False)
    room.request_refresh("inc-b", steps=["s9"], header=False)  # another incident: its own render, not queued
    assert len(tasks) == 2, "one render task per incident"
    slack_answered.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert renders == [("inc-a", [], True), ("inc-b", ["s9"], False), ("inc-a", ["s1", "s2"], False)], \
        "the two requests made meanwhile were one render, after the first"


async def test_a_failed_render_is_logged_and_the_next_request_renders_again() -> None:
    room = _war_room()
    tasks: list[asyncio.Task[Any]] = []
    room.svc.background = lambda coro: tasks.append(asyncio.ensure_future(coro))
    calls: list[bool] = []

    async def refresh(incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        calls.append(header)
        if len(calls) == 1:
            raise TimeoutError("Slack did not answer")

    room.refresh = refresh  # type: ignore[method-assign]
    room.request_refresh("inc-a")
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    room.request_refresh("inc-a")
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
    assert calls == [True, True] and len(tasks) == 2
