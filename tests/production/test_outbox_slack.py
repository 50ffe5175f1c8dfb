"""The outbox and keyed posting against the sandbox: parked work is posted in the incident thread with a Retry
only an incident lead may press, and counted in /metrics; a keyed post whose answer was lost is found by its
metadata instead of posted again, also by a second replica; a decider's DM and a reply a state change owes are
sent once across lost answers, crashes and re-runs; Slack failing a share of calls for a whole incident doubles
nothing and shows the failures on the timeline."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import update
from sqlmodel import select

from bot.core import timeline, timers
from bot.core.decider_dm import DECIDER_DM, tell_deciders
from bot.core.events import FAST_PATH_GRACE
from bot.sandbox.faults import LOST_500
from bot.slack.client import make_client
from bot.slack.gateway import META_TYPE, SlackGateway
from bot.store.models import CommsDraft, Incident, Page, Timer
from tests.support.harness import Harness, harness

LEAD, OUTSIDER = "U100TL01", "U900OUT1"


async def _declare(h: Harness) -> Incident:
    await h.command("U500OC01", "start --level immediate --version v2.3.1 checkout errors after deploy")
    return await h.only_incident()


def _thread(h: Harness, incident: Incident) -> list[dict[str, Any]]:
    header = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback incident"))
    return list(header.get("replies", []))


async def _metric(h: Harness, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{h.app_url}/metrics") as response:
        body = await response.text()
    return next(float(line.split()[-1]) for line in body.splitlines() if line.startswith(f"{name} "))


async def test_parked_work_is_posted_in_the_thread_with_a_retry_for_leads_and_counted(tmp_path: Path) -> None:
    """A listener failing every attempt: its row is parked, the thread says what failed, when and the error,
    /metrics counts it; an outsider's Retry changes nothing; the lead's Retry runs it again (now succeeding),
    the notice says who retried and the count drops."""
    async with harness(tmp_path) as h:
        incident = await _declare(h)
        healthy = False
        calls: list[str] = []

        async def brittle(incident_id: str, **_: Any) -> None:
            calls.append(incident_id)
            if not healthy:
                raise RuntimeError("the status page answered 503")

        h.bot.svc.events.on("probe", brittle, name="test.update_status_page")
        await h.bot.svc.events.emit("probe", change="p1", incident_id=incident.id)
        for _ in range(timers.MAX_ATTEMPTS + 2):
            await h.advance(timers.BACKOFF_CAP_S)
        assert len(calls) == timers.MAX_ATTEMPTS
        assert await _metric(h, "rollbot_outbox_parked") == 1
        [notice] = [m for m in _thread(h, incident) if "failed" in m["text"] and "status page" in m["text"]]
        assert "the status page answered 503" in notice["text"] and "UTC" in notice["text"]
        async with h.bot.db.session() as session:
            kinds = [e.kind for e in await timeline.events(session, incident.id)]
        assert "work_retrying" in kinds and "work_parked" in kinds, "the failures are on the timeline"

        await h.click(OUTSIDER, incident.channel_id or "", notice["ts"], text="Retry")
        assert len(calls) == timers.MAX_ATTEMPTS and await _metric(h, "rollbot_outbox_parked") == 1, \
            "a refused Retry changes nothing"
        healthy = True
        await h.click(LEAD, incident.channel_id or "", notice["ts"], text="Retry")
        assert len(calls) == timers.MAX_ATTEMPTS + 1
        assert await _metric(h, "rollbot_outbox_parked") == 0
        [notice] = [m for m in _thread(h, incident) if m["ts"] == notice["ts"]]
        assert "retried" in notice["text"] and not any(
            e.get("type") == "button" for b in notice.get("blocks") or [] for e in b.get("elements") or [])
        async with h.bot.db.session() as session:
            kinds = [e.kind for e in await timeline.events(session, incident.id)]
        assert kinds.count("work_retried") == 1


async def test_a_keyed_post_whose_answer_was_lost_is_found_not_posted_again(tmp_path: Path) -> None:
    """Slack posts the message but the bot gets a 500 back (twice): put_message looks for the key in the
    conversation (metadata, include_all_metadata) and adopts the message; one message, the stored ts is its ts.
    In a thread too (conversations.replies)."""
    async with harness(tmp_path) as h:
        incident = await _declare(h)
        channel = incident.channel_id or ""
        before = len(h.messages(channel))
        h.sb.faults.fail_next("chat.postMessage", 2, status=LOST_500)
        ref = await h.bot.svc.slack.put_message(incident.id, "probe", channel, "Probe message")
        posted = [m for m in h.messages(channel) if m["text"] == "Probe message"]
        assert len(posted) == 1 and posted[0]["ts"] == ref.ts and len(h.messages(channel)) == before + 1
        header = await h.bot.svc.slack.message_ref(incident.id, "header")
        assert header is not None
        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        reply = await h.bot.svc.slack.put_message(incident.id, "probe-reply", channel, "Probe reply",
                                                  thread_ts=header.ts)
        replies = [r for r in _thread(h, incident) if r["text"] == "Probe reply"]
        assert [r["ts"] for r in replies] == [reply.ts]
        message = next(m for c in h.sb.ws.channels.values() for m in c.messages if m.ts == ref.ts)
        assert message.metadata == {"event_type": META_TYPE, "event_payload": {"key": f"{incident.id}:probe"}}


async def test_a_decider_dm_is_sent_once_across_a_lost_answer_a_crash_before_sending_and_a_rerun(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decider's one-time DM (a comms draft or a gated action waiting for them), like a page: Slack sends it
    but answers 500, and it is found in the DM, not sent again; the process dies between the claim and the send
    (the fast path never runs), and the timer worker sends it after the grace, once; told again with the same key,
    nothing is owed; its row worked a second time (a crash after the DM, before the row was marked done) finds the
    DM and sends nothing."""
    async with harness(tmp_path) as h:
        incident = await _declare(h)
        svc = h.bot.svc
        [pm, *_] = await svc.roles.members("product_manager", incident.id)

        def dms(text: str) -> list[dict[str, Any]]:
            return [m for d in h.state()["dms"] if d["user"] == pm for m in d["messages"] if m["text"] == text]

        lost_before = sum(c["method"] == "chat.postMessage" and c["status"] != 200 for c in h.sb.calls)
        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        assert await tell_deciders(svc, incident.id, "probe:lost", ["product_manager"], "Probe: lost answer") == [pm]
        assert sum(c["method"] == "chat.postMessage" and c["status"] != 200 for c in h.sb.calls) == lost_before + 1
        assert len(dms("Probe: lost answer")) == 1

        with monkeypatch.context() as crashed:  # the commit happened, then the process died: nothing sent
            crashed.setattr(svc.timers, "claim_key", lambda key: asyncio.sleep(0, result=None))
            await tell_deciders(svc, incident.id, "probe:crash", ["product_manager"], "Probe: after a crash")
        assert dms("Probe: after a crash") == []
        async with h.bot.db.session() as session:
            [row] = (await session.exec(select(Timer).where(Timer.kind == DECIDER_DM,
                                                            Timer.key.endswith(f"probe:crash:{pm}")))).all()  # type: ignore[attr-defined]
        assert row.status == "pending", "the DM is owed, in the database"
        await h.advance(FAST_PATH_GRACE.total_seconds() + 1)
        assert len(dms("Probe: after a crash")) == 1, "the worker sent it"
        assert await tell_deciders(svc, incident.id, "probe:crash", ["product_manager"], "Probe: after a crash") == []

        async with h.bot.db.session() as session:  # worked again, as after a crash between the DM and "done"
            await session.exec(update(Timer).where(Timer.id == row.id).values(  # type: ignore[call-overload,arg-type]
                status="pending", due_at=h.clock.now()))
        assert await h.advance(1) >= 1
        async with h.bot.db.session() as session:
            assert (await session.get(Timer, row.id)).status == "fired"  # type: ignore[union-attr]
        assert len(dms("Probe: after a crash")) == 1, "found in the DM, not sent again"


async def test_an_owed_reply_whose_answer_was_lost_is_found_and_a_rerun_never_doubles_it(tmp_path: Path) -> None:
    """A reply a timer owes in the header's thread (a time target passed): Slack posts it but answers 500, the
    reply is found by its key in the thread (conversations.replies), and the timer's handler run again (a retry,
    a second replica) posts nothing. The same for a message a state change owes in the channel (a role handed
    out): found in the channel's history, said once."""
    async with harness(tmp_path) as h:
        incident = await _declare(h)
        channel = incident.channel_id or ""
        async with h.bot.db.session() as session:
            target = (await session.exec(select(Timer).where(Timer.incident_id == incident.id,
                                                             Timer.kind == "target"))).first()
        assert target is not None
        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        await h.bot.checklists.on_target(target)
        await h.bot.checklists.on_target(target)
        said = [r for r in _thread(h, incident) if "minutes elapsed" in r["text"]]
        assert len(said) == 1, [r["text"] for r in said]
        assert any(c["method"] == "conversations.replies" for c in h.sb.calls), "looked for in the thread"
        ref = await h.bot.svc.slack.message_ref(incident.id, f"reply:{target.key}")
        assert ref is not None and ref.ts == said[0]["ts"]

        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        for _ in range(2):
            await h.bot.approvals.announce_role(incident.id, "product_manager", OUTSIDER, LEAD)
        told = [m for m in h.messages(channel) if f"gave <@{OUTSIDER}>" in m["text"]]
        assert len(told) == 1, [m["text"] for m in told]


async def test_two_replicas_posting_one_key_at_once_post_it_once(tmp_path: Path) -> None:
    """Two gateways (two replicas, one database, no shared lock) put the same keyed message at the same time,
    five times over: one Slack message per key, both replicas return its ts."""
    async with harness(tmp_path) as h:
        incident = await _declare(h)
        channel = incident.channel_id or ""
        settings = h.bot.settings
        assert settings.slack_bot_token is not None
        other = SlackGateway(make_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url),
                             h.bot.db)
        h.sb.faults.configure(delay_s=0.02, jitter_s=0.03, seed=7)
        for n in range(5):
            refs = await asyncio.gather(h.bot.svc.slack.put_message(incident.id, f"race:{n}", channel, f"Race {n}"),
                                        other.put_message(incident.id, f"race:{n}", channel, f"Race {n}"))
            assert refs[0].ts == refs[1].ts
        h.sb.faults.configure(delay_s=0, jitter_s=0)
        for n in range(5):
            assert sum(m["text"] == f"Race {n}" for m in h.messages(channel)) == 1, n


@pytest.mark.slow
async def test_slack_failing_a_fifth_of_calls_for_a_whole_incident_doubles_nothing(tmp_path: Path) -> None:
    """500s, 429s and lost answers on 20 % of calls from the declaration on, through paging, the decision and
    the ladder: once Slack is healthy again and the retries ran, one header pinned once, each step message once,
    each page and ladder DM once, each comms draft once, no keyed message twice, and the failures the bot retried
    are on the timeline."""
    async with harness(tmp_path) as h:
        h.sb.faults.configure(fail_share=0.2, fail_statuses=[500, 429, LOST_500], seed=14)
        await h.command("U500OC01", "start --level consideration --version v2.3.1 checkout errors after deploy")
        for _ in range(40):  # 20 minutes of incident, retries and the ladder included
            await h.advance(30)
        h.sb.faults.configure(fail_share=0.0)
        for _ in range(20):
            await h.advance(timers.BACKOFF_CAP_S)
        incident = await h.only_incident()
        assert incident.data.get("war_room_ready")
        channel = incident.channel_id or ""
        roots = [m for m in h.messages(channel)]
        assert sum(m["text"].startswith("Rollback incident") for m in roots) == 1
        assert h.channel(channel)["pins"] == [next(m["ts"] for m in roots if m["text"].startswith("Rollback incident"))]
        async with h.bot.db.session() as session:
            parked = (await session.exec(select(Timer).where(Timer.status == "failed"))).all()
            retried = (await session.exec(select(Timer).where(Timer.attempts > 0))).all()
            pages = (await session.exec(select(Page).where(Page.incident_id == incident.id))).all()
            kinds = [e.kind for e in await timeline.events(session, incident.id)]
            drafts = (await session.exec(select(CommsDraft).where(CommsDraft.incident_id == incident.id))).all()
        assert parked == [], [(t.key, t.last_error) for t in parked]
        texts = [m["text"] for m in roots]
        for title in ("Step 1: Incident Detection and Alert", "Step 2: Rollback Decision"):
            assert sum(title in t for t in texts) == 1, title
        assert len(pages) >= 4 and all(p.ts for p in pages), "responders and the ladder were paged"
        for page in pages:
            dm = next(d for d in h.state()["dms"] if d["user"] == page.user_id)
            sent = [m for m in dm["messages"] if m["text"].startswith(("Page for", "Escalation"))]
            assert len(sent) == len({m["text"] for m in sent}), (page.user_id, [m["text"] for m in sent])
            assert any(m["ts"] == page.ts for m in sent)
        assert [c for c in h.sb.calls if c["status"] != 200], "Slack did fail calls"
        # Which calls fail depends on the order concurrent calls reach Slack; many are retried inside the Slack
        # client. Every piece of work the bot retried (a durable row with attempts) is on the timeline.
        assert not retried or {"work_retrying", "slack_failure"} & set(kinds), \
            ("the failures the bot retried are on the timeline", [t.key for t in retried])
        keys = [str(m.metadata["event_payload"]["key"]) for c in h.sb.ws.channels.values() for m in c.messages
                if m.metadata and m.metadata.get("event_type") == META_TYPE]
        assert len(keys) == len(set(keys)), "no keyed message or page was posted twice"
        assert drafts and all(keys.count(f"{incident.id}:comms:{d.template_id}") == 1 for d in drafts), \
            "each comms draft posted once"
