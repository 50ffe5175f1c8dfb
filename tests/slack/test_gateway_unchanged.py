"""The header is not edited to what it already shows: an identical re-render costs no chat.update, while an edit
Slack failed is sent again by the next render (nothing is assumed shown that was not)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError
from sqlmodel import select

from bot.store.models import SlackMessage
from tests.support.harness import Harness, harness


async def test_an_identical_header_render_is_not_sent_and_a_failed_one_is_sent_again(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        await h.quiet()  # the health check the opening starts (a real process) done: no render of its own meanwhile
        gateway = h.bot.svc.slack
        async with h.bot.db.session() as session:
            header = (await session.exec(select(SlackMessage).where(
                SlackMessage.incident_id == incident.id, SlackMessage.key == "header"))).one()

        def edits(text: str) -> int:
            return sum(1 for c in h.sb.calls if c["method"] == "chat.update" and c["ok"]
                       and c["args"].get("ts") == header.ts and c["args"].get("text") == text)

        await gateway.update_message(incident.id, "header", "first")
        await gateway.update_message(incident.id, "header", "first")
        assert edits("first") == 1
        h.sb.faults.fail_next("chat.update", 20, status=500)  # more than the client's own retries
        with pytest.raises(SlackApiError):
            await gateway.update_message(incident.id, "header", "second")
        h.sb.faults.next_failures.clear()  # Slack is back
        await gateway.update_message(incident.id, "header", "second")
        assert edits("second") == 1, "the failed edit is sent by the next render"
        step = next(m.key for m in (await _refs(h, incident.id)) if m.key.startswith("step:"))
        for _ in range(2):  # a checklist's same blocks re-sent is what undoes a refused tick: always sent
            await gateway.update_message(incident.id, step, "same")
        assert sum(1 for c in h.sb.calls if c["method"] == "chat.update" and c["args"].get("text") == "same") == 2


async def test_an_identical_render_while_one_is_on_its_way_returns_once_it_is_shown(tmp_path: Path) -> None:
    """Whoever asks for the header's current render is done only once Slack shows it: the second of two identical
    renders waits for the first (its work, a test's settle, are not over before the edit lands)."""
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        await h.quiet()  # the health check the opening starts (a real process) done: no render of its own meanwhile
        gateway = h.bot.svc.slack
        h.sb.faults.configure(delay_s=0.3)  # the first edit still on its way when the second is asked for
        first = asyncio.create_task(gateway.update_message(incident.id, "header", "third"))
        await asyncio.sleep(0)
        await gateway.update_message(incident.id, "header", "third")
        shown = [c for c in h.sb.calls if c["method"] == "chat.update" and c["args"].get("text") == "third"]
        assert len(shown) == 1 and shown[0]["ok"], "shown when the second render returns, and sent once"
        await first


async def _refs(h: Harness, incident_id: str) -> list[SlackMessage]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(SlackMessage).where(SlackMessage.incident_id == incident_id))).all())
