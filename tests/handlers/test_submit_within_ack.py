"""A form submission is answered inside Slack's 3 s however long the engine takes: the outcome is shown on the
form when it is ready in time, and a refusal that comes later reaches the person by DM."""

from __future__ import annotations

import asyncio
from typing import Any

from handlers import interaction
from handlers.interaction import submit_within_ack


class FakeSlack:
    def __init__(self) -> None:
        self.dms: list[tuple[str, str]] = []

    async def dm(self, user: str, text: str) -> tuple[str, str]:
        self.dms.append((user, text))
        return "D1", "1.0"


class FakeBot:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.svc = type("Svc", (), {"slack": FakeSlack()})()

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        return task


class Ack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


async def test_a_quick_refusal_is_shown_on_the_form() -> None:
    bot, ack = FakeBot(), Ack()

    async def work() -> str | None:
        return "Only the step owner can skip it."

    await submit_within_ack(bot, ack, "U1", work(), "reason")  # type: ignore[arg-type]
    assert ack.calls == [{"response_action": "errors", "errors": {"reason": "Only the step owner can skip it."}}]
    assert bot.svc.slack.dms == []


async def test_a_quick_success_closes_the_form() -> None:
    bot, ack = FakeBot(), Ack()

    async def work() -> str | None:
        return None

    await submit_within_ack(bot, ack, "U1", work(), "reason")  # type: ignore[arg-type]
    assert ack.calls == [{}]


async def test_slow_work_is_acknowledged_first_and_a_late_refusal_arrives_by_dm(monkeypatch: Any) -> None:
    monkeypatch.setattr(interaction, "SUBMIT_WITHIN_ACK_SECONDS", 0.05)
    bot, ack = FakeBot(), Ack()
    release = asyncio.Event()

    async def work() -> str | None:
        await release.wait()  # the engine is still busy when the budget runs out, however fast the machine
        return "The decision was already made."

    await submit_within_ack(bot, ack, "U1", work(), "reason")  # type: ignore[arg-type]
    assert ack.calls == [{}], "the form is closed before the work finishes"
    assert bot.svc.slack.dms == []
    release.set()
    await asyncio.gather(*bot.tasks)
    assert bot.svc.slack.dms == [("U1", ":no_entry: The decision was already made.")]
