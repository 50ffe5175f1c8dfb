"""Paging and the escalation ladder on the injected clock, end to end through the sandbox's DMs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from bot.app import Rollbot
from bot.core import timeline
from bot.store.models import Incident, Page
from tests.support.harness import Harness, harness

LADDER = {5: {"U700PM01", "U700PM02"}, 10: {"U800CT01"}, 15: {"U810CE01"}, 30: {"U820BD01", "U820BD02"}}


def dms(h: Harness, prefix: str) -> dict[str, int]:
    """How many DMs starting with `prefix` each user got."""
    found: dict[str, int] = {}
    for dm in h.state()["dms"]:
        n = sum(1 for m in dm["messages"] if m["text"].startswith(prefix))
        if n:
            found[dm["user"]] = n
    return found


def thread(h: Harness, incident: Incident) -> list[str]:
    header = next(m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m["text"])
    return [r["text"] for r in header.get("replies", [])]


async def _open(h: Harness, text: str = "start frontend --level consideration", decide: bool = True) -> Incident:
    """Consideration needs the Technical Lead and the Product Manager; deciding in time keeps the ladder on its
    own schedule (a missed decision would pull it forward)."""
    await h.command("U500OC01", text)
    incident = await h.only_incident()
    if decide:
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        for user in ("U100TL01", "U700PM01"):
            await h.click(user, incident.channel_id or "", decision["ts"], text="Approve rollback")
        assert (await h.only_incident()).decision == "approved"
    return incident


async def _advance_to(h: Harness, incident: Incident, minutes: float) -> None:
    elapsed = (h.clock.now() - incident.declared_at).total_seconds()
    await h.advance(minutes * 60 - elapsed)


async def _close(h: Harness, incident: Incident) -> None:
    async with h.bot.db.session() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None
        row.status, row.resolved_at, row.dedup_key = "resolved", h.clock.now(), None
        timeline.record(session, incident.id, h.clock.now(), "resolved", "resolved in the test")
    await h.bot.svc.events.emit("closed", incident_id=incident.id)
    await h.settle()


async def test_the_ladder_fires_on_time_to_the_right_people_once_each(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        told: set[str] = set()
        for minute, people in LADDER.items():
            await _advance_to(h, incident, minute - 0.1)
            assert set(dms(h, "Escalation")) == told, f"nobody new before +{minute}"
            await _advance_to(h, incident, minute + 0.1)
            told |= people
            assert set(dms(h, "Escalation")) == told, f"+{minute}"
        await _advance_to(h, incident, 45)
        assert all(n == 1 for n in dms(h, "Escalation").values())
        notes = [t for t in thread(h, incident) if t.startswith("📣 Escalation level")]
        assert len(notes) == 4 and "+5m" in notes[0] and "+30m" in notes[3]


async def test_resolving_at_twelve_minutes_cancels_the_ceo_and_board_rungs(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        await _advance_to(h, incident, 12)
        await _close(h, incident)
        await _advance_to(h, incident, 40)
        assert set(dms(h, "Escalation")) == LADDER[5] | LADDER[10]
        stopped = [t for t in thread(h, incident) if t.startswith("🛑 Escalation stopped")]
        assert len(stopped) == 1 and "CEO" in stopped[0] and "Board" in stopped[0]


async def test_an_unacknowledged_page_goes_to_the_secondary_after_the_response_time(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h, decide=False)
        pages = dms(h, "Page for")
        assert {"U100TL01", "U200DO01", "U400QA01"} <= set(pages)
        devops_dm = next(d for d in h.state()["dms"] if d["user"] == "U200DO01")
        await h.click("U200DO01", devops_dm["id"], devops_dm["messages"][0]["ts"], text="Acknowledge")
        await _advance_to(h, incident, 1.9)
        assert "U100TL02" not in dms(h, "Page for")
        await _advance_to(h, incident, 2.1)  # Technical Lead and DevOps Lead respond within 2 minutes
        pages = dms(h, "Page for")
        assert pages.get("U100TL02") == 1, "the technical lead's backup is paged"
        assert "U200DO02" not in pages, "the devops lead acknowledged: no backup"
        notes = thread(h, incident)
        assert any("acknowledged after" in t and "<@U200DO01>" in t for t in notes)
        assert any(t.startswith("📟 No acknowledgement from the primary Technical Lead") for t in notes)


async def test_a_missed_decision_deadline_escalates_at_once_and_only_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h, "start payment", decide=False)  # immediate: decide within 2 minutes
        await _advance_to(h, incident, 2.05)
        assert set(dms(h, "Escalation")) == LADDER[5], "the PM is told at the missed deadline, not at +5"
        await _advance_to(h, incident, 6)
        assert dms(h, "Escalation") == {u: 1 for u in LADDER[5]}
        await _advance_to(h, incident, 10.1)
        assert set(dms(h, "Escalation")) == LADDER[5] | LADDER[10]


async def test_a_restart_in_the_middle_of_the_ladder_keeps_every_rung_on_time_with_no_repeat(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        await _advance_to(h, incident, 11)
        await h.bot.stop()
        h.bot = Rollbot(h.bot.settings, clock=h.clock)
        await h.bot.start(scheduler=False)
        await _advance_to(h, incident, 15.1)
        assert set(dms(h, "Escalation")) == LADDER[5] | LADDER[10] | LADDER[15]
        await _advance_to(h, incident, 31)
        assert dms(h, "Escalation") == {u: 1 for people in LADDER.values() for u in people}


async def test_drill_dms_are_marked_and_go_only_to_drill_participants(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U100TL01", "drill frontend --level consideration")
        incident = await h.only_incident()
        assert all("DRILL" in d["messages"][0]["text"] for d in h.state()["dms"])
        await _advance_to(h, incident, 31)
        # The example roster names the Product Manager (one of the two PMs) as the only manager in drills.
        assert dms(h, "[DRILL] Escalation") == {"U700PM01": 1}
        assert not {"U800CT01", "U810CE01", "U820BD01"} & set(dms(h, ""))
        assert sum("not a drill participant" in t for t in thread(h, incident)) == 3


@pytest.mark.slow
async def test_a_page_lost_to_a_slack_outage_is_sent_later_exactly_once(tmp_path: Path) -> None:
    """Slack answers every DM attempt with a 500 while the war room opens: the pages are recorded with their
    delivery timers, nobody is DMed yet, nothing is lost; once Slack is back each responder gets one page."""
    from sqlmodel import select

    from bot.store.models import Page

    async with harness(tmp_path) as h:
        h.sb.faults.fail_next("conversations.open", 500, status=500)
        incident = await _open(h, decide=False)
        assert dms(h, "Page for") == {}, "no DM could be sent"
        async with h.bot.db.session() as session:
            pages = (await session.exec(select(Page).where(Page.incident_id == incident.id))).all()
        assert pages and all(p.ts is None for p in pages), "recorded, not sent"
        h.sb.faults.next_failures.clear()  # Slack is back
        await h.advance(60)
        await h.advance(60)  # a second turn must not send anything twice
        got = dms(h, "Page for")
        first = {p.user_id for p in pages}
        async with h.bot.db.session() as session:
            pages = (await session.exec(select(Page).where(Page.incident_id == incident.id))).all()
        assert first <= set(got), "every page recorded during the outage was delivered"
        assert set(got) == {p.user_id for p in pages} and all(n == 1 for n in got.values()), got
        assert all(p.ts for p in pages)


def _dm(h: Harness, user: str) -> dict:  # type: ignore[type-arg]
    dm = next(d for d in h.state()["dms"] if d["user"] == user)
    return next(m for m in dm["messages"] if m["text"].startswith("Page for"))


async def test_acting_in_the_incident_acknowledges_the_page_and_stops_its_escalation(tmp_path: Path) -> None:
    """The Technical Lead votes without pressing Acknowledge: the vote is the acknowledgement (on the timeline
    as such, their DM loses the button), so their backup is not paged; the DevOps Lead, who did nothing, still
    escalates to the backup, and a refused click (the QA Lead voting) acknowledges nothing."""
    async with harness(tmp_path) as h:
        incident = await _open(h, decide=False)
        assert "page_ack" in str(_dm(h, "U100TL01")["blocks"])
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
        await h.click("U400QA01", incident.channel_id or "", decision["ts"], text="Approve rollback")  # refused
        await h.settle()
        async with h.bot.db.session() as session:
            acks = [e for e in await timeline.events(session, incident.id) if e.kind == "page_acked"]
        assert [(e.actor, e.data.get("by")) for e in acks] == [("U100TL01", "decision_approve")]
        assert "by acting in the incident" in acks[0].text
        dm = _dm(h, "U100TL01")
        assert "page_ack" not in str(dm["blocks"]) and "you acted in the incident" in str(dm["blocks"])
        assert "page_ack" in str(_dm(h, "U400QA01")["blocks"]), "a refused click is not an acknowledgement"
        await _advance_to(h, incident, 2.1)  # past the Technical Lead's and DevOps Lead's 2-minute response time
        pages = dms(h, "Page for")
        assert "U100TL02" not in pages, "the Technical Lead acted: no backup"
        assert pages.get("U200DO02") == 1, "the DevOps Lead did nothing: the backup is paged"
        notes = thread(h, incident)
        assert sum("<@U100TL01> is on it" in t for t in notes) == 1
        async with h.bot.db.session() as session:
            page = (await session.exec(select(Page).where(Page.incident_id == incident.id,
                                                          Page.user_id == "U100TL01"))).one()
        said = await h.bot.escalation.acknowledge(page.id or 0, "U100TL01", page.channel, page.ts)  # a stale button
        assert said == "Already acknowledged."
        async with h.bot.db.session() as session:
            again = [e for e in await timeline.events(session, incident.id) if e.kind == "page_acked"]
        assert len(again) == 1, "acknowledged once"


async def test_acting_acknowledges_only_the_persons_own_pages(tmp_path: Path) -> None:
    """The DevOps Lead runs nothing here; the Technical Lead's act leaves the DevOps Lead's page waiting, and the
    Acknowledge button of that page still works for the DevOps Lead alone."""
    async with harness(tmp_path) as h:
        incident = await _open(h, decide=False)
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
        await h.settle()
        assert "page_ack" in str(_dm(h, "U200DO01")["blocks"])
        devops_dm = next(d for d in h.state()["dms"] if d["user"] == "U200DO01")
        await h.click("U200DO01", devops_dm["id"], _dm(h, "U200DO01")["ts"], text="Acknowledge")
        async with h.bot.db.session() as session:
            acks = {e.actor: e.data.get("by") for e in await timeline.events(session, incident.id)
                    if e.kind == "page_acked"}
        assert acks == {"U100TL01": "decision_approve", "U200DO01": None}


async def test_a_management_notification_asks_for_no_acknowledgement(tmp_path: Path) -> None:
    """The ladder notifies: its DMs carry the war room link and no Acknowledge, and nothing escalates from them;
    a responder's page still has its button."""
    async with harness(tmp_path) as h:
        incident = await _open(h)
        await _advance_to(h, incident, 5.1)
        pm = next(m for d in h.state()["dms"] if d["user"] == "U700PM02" for m in d["messages"]
                  if m["text"].startswith("Escalation"))
        assert "page_ack" not in str(pm["blocks"]) and "nothing to acknowledge" in str(pm["blocks"])
        assert "page_join" in str(pm["blocks"]), "the war room is a click away"
        assert "page_ack" in str(_dm(h, "U400QA01")["blocks"])
