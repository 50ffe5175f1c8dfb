"""Drafts keep up with the incident: a draft nobody edited is re-rendered from the facts at approval (the thread
then shows the approved text); an edited draft is the editor's text and stays as written."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from bot.store.models import CommsDraft
from tests.comms.test_comms import _draft_message, _open
from tests.support.harness import harness


async def _text(h: object, template_id: str) -> str:
    async with h.bot.db.session() as session:  # type: ignore[attr-defined]
        return (await session.exec(select(CommsDraft).where(CommsDraft.template_id == template_id))).one().text


async def test_a_waiting_draft_follows_the_decision_and_an_edited_one_does_not(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        assert "The rollback decision is pending." in await _text(h, "executive_briefing")
        await h.click("U700PM01", incident.channel_id or "",
                      _draft_message(h, incident, "Internal team notification")["ts"], text="Edit…")
        view = h.sb.ws.views["U700PM01"][-1]
        await h.sb.submit("U700PM01", view["id"], {"text": "Written by hand."})
        await h.settle()
        h.clock.advance(90)
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")

        h.clock.advance(5 * 60)
        for title in ("Executive briefing", "Internal team notification"):
            await h.click("U700PM01", incident.channel_id or "", _draft_message(h, incident, title)["ts"],
                          text="Approve")
        briefing = await _text(h, "executive_briefing")
        assert "Rollback approved by Tara Lin at" in briefing and "pending" not in briefing
        assert "6 minutes in" in briefing, "the figures as they are at approval"
        assert "Rollback approved by Tara Lin" in str(_draft_message(h, incident, "Executive briefing")["blocks"]), \
            "the thread shows the text that was approved"
        assert await _text(h, "internal_team_notification") == "Written by hand."
