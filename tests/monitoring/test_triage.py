"""An alert that opens nothing is accounted for: posted once to the triage channel with its labels, links and why,
a repeat of it posts nothing more, and its Declare button opens the declare form prefilled (level from severity)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from sqlmodel import select

from bot.alerts.triage import post_triage
from bot.alerts.triage_view import DECLARE_ACTION
from bot.sandbox.faults import LOST_500
from bot.store.models import ReceivedAlert
from tests.support.harness import harness

AUTH = {"Authorization": "Bearer test-alert-token"}
UNMATCHED = {
    "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "{}:{alertname=\"ApiLatencyP95High\"}",
    "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
    "alerts": [{"status": "firing", "labels": {"alertname": "ApiLatencyP95High", "service": "api",
                                               "severity": "warning"},
                "annotations": {"summary": "p95 <b>slow</b>", "runbook_url": "https://wiki.example/latency"},
                "startsAt": "2026-01-15T08:58:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=y", "fingerprint": "lat0001"}],
}


async def test_unmatched_alert_posted_once_to_triage_and_declare_opens_a_prefilled_form(tmp_path: Path) -> None:
    async with harness(tmp_path, ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h:
        async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=UNMATCHED,
                                                        headers=AUTH) as r:
            body = await r.json()
        [unmatched] = body["unmatched"]
        async with h.bot.db.session() as session:
            [row] = (await session.exec(select(ReceivedAlert))).all()
        assert row.id is not None and row.outcome == "unmatched"
        await h.settle()  # the webhook's answer is followed by the post
        assert not await post_triage(h.bot.svc, row.id, unmatched["reason"])  # a repeat: nothing more posted
        [post] = [m for m in h.messages("C0GENERAL") if DECLARE_ACTION in json.dumps(m.get("blocks") or [])]
        text = json.dumps(post["blocks"])
        assert "*ApiLatencyP95High* from alertmanager opened nothing" in text
        assert "`service=api`" in text and "`severity=warning`" in text
        assert "p95 &lt;b&gt;slow&lt;/b&gt;" in text  # alert text escaped before mrkdwn
        assert "<https://wiki.example/latency|runbook>" in text and "matches no trigger" in text

        await h.click("U500OC01", "C0GENERAL", post["ts"], action_id=DECLARE_ACTION)
        [view] = h.state()["views"]["U500OC01"]
        blocks = {b["block_id"]: b for b in view["blocks"] if "block_id" in b}
        assert blocks["level"]["element"]["initial_option"]["value"] == "urgent"  # severity warning: second level
        assert "ApiLatencyP95High" in blocks["description"]["element"]["initial_value"]
        assert "service=api" in blocks["description"]["element"]["initial_value"]


async def test_an_unmatched_alert_through_the_webhook_reaches_triage_and_is_counted(tmp_path: Path) -> None:
    """No direct call: the webhook's answer is followed by the triage post, and /metrics counts the alert by
    source and outcome; the same alert again posts nothing more."""
    async with harness(tmp_path, ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h:
        for _ in range(2):
            async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=UNMATCHED,
                                                            headers=AUTH) as r:
                assert r.status == 200
            await h.settle()
        posts = [m for m in h.messages("C0GENERAL") if DECLARE_ACTION in json.dumps(m.get("blocks") or [])]
        assert len(posts) == 1 and "ApiLatencyP95High" in json.dumps(posts[0]["blocks"])
        await h.advance(60)  # the durable fallback timer comes due: it finds the post made and adds nothing
        assert len([m for m in h.messages("C0GENERAL") if DECLARE_ACTION in json.dumps(m.get("blocks") or [])]) == 1
        async with aiohttp.ClientSession() as s, s.get(f"{h.app_url}/metrics") as r:
            metrics = await r.text()
        assert 'rollbot_alerts_total{outcome="unmatched",source="alertmanager"} 2.0' in metrics


async def test_a_triage_post_whose_answer_was_lost_is_found_not_posted_again(tmp_path: Path) -> None:
    """Slack posts the triage message but the bot gets a 500 back: in a triage channel the bot was invited to, the
    post is found by the key in its metadata and not doubled; the same post again is nothing. Where the bot posts
    from outside (chat:write.public), it cannot read the channel, so after a lost answer it posts again rather
    than never."""
    async with harness(tmp_path, ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h:
        h.sb.ws.channels["C0GENERAL"].members.append(h.sb.ws.bot.id)  # someone invited the bot to #general

        def posts() -> list[dict[str, object]]:
            return [m for m in h.messages("C0GENERAL") if DECLARE_ACTION in json.dumps(m.get("blocks") or [])]

        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=UNMATCHED,
                                                        headers=AUTH) as r:
            assert r.status in (200, 202)
        await h.settle()
        async with h.bot.db.session() as session:
            [row] = (await session.exec(select(ReceivedAlert))).all()
        assert row.id is not None
        assert len(posts()) == 1 and h.sb.faults.next_failures.get("chat.postMessage") in (None, [], 0), \
            "the answer was lost, and the post found"
        assert not await post_triage(h.bot.svc, row.id, "matches no trigger")
        assert len(posts()) == 1

        h.sb.ws.channels["C0GENERAL"].members.remove(h.sb.ws.bot.id)
        async with h.bot.db.session() as session:
            again = await session.get(ReceivedAlert, row.id)
            assert again is not None
            again.payload = {**again.payload, "starts_at": "2026-01-15T09:30:00Z"}  # a new firing episode
        h.sb.faults.fail_next("chat.postMessage", 1, status=LOST_500)
        assert await post_triage(h.bot.svc, row.id, "matches no trigger")
        assert len(posts()) == 3, "posted once more after the lost answer: it could not look"
