"""Opening the war room end to end: /rollback and alert webhooks over real HTTP, against the Slack sandbox."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import col, func, select

from bot.store.models import Incident, IncidentAlert, ReceivedAlert, SlackMessage, TimelineEvent, Timer
from tests.support.blockkit import schema_errors
from tests.support.harness import Harness, harness

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "alerts"
AUTH = {"Authorization": "Bearer test-alert-token"}
PAYMENT_ALERT = {
    "version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "{}:{alertname=\"PaymentFailureRateHigh\"}",
    "groupLabels": {"alertname": "PaymentFailureRateHigh"}, "commonLabels": {}, "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
    "alerts": [{"status": "firing", "labels": {"alertname": "PaymentFailureRateHigh", "metric": "payment_failure_rate",
                                               "severity": "critical", "service": "payments"},
                "annotations": {"summary": "3.4% of payments failing", "value": "3.4"},
                "startsAt": "2026-01-15T08:58:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "pay0001"}],
}


async def post_alert(h: Harness, source: str, body: object, headers: dict[str, str] | None = None,
                     raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else json.dumps(body).encode()
    async with aiohttp.ClientSession() as session, session.post(
            f"{h.app_url}/alerts/{source}", data=data,
            headers={"Content-Type": "application/json", **(AUTH if headers is None else headers)}) as response:
        return response.status, await response.json()


async def count(h: Harness, model: type) -> int:
    async with h.bot.db.session() as session:
        return (await session.exec(select(func.count()).select_from(model))).one()


def assert_war_room(h: Harness, incident: Incident) -> dict:
    """The channel exists with a valid name, the responders, a pinned header and Phase 1's steps, each posted once."""
    assert incident.channel_id and incident.channel_name
    assert re.fullmatch(r"[a-z0-9_-]{1,80}", incident.channel_name)
    channel = h.channel(incident.channel_id)
    assert {"U100TL01", "U200DO01", "U500OC01"} <= set(channel["members"])
    texts = [m.get("text", "") for m in channel["messages"]]
    header = [m for m in channel["messages"] if "Rollback incident" in m.get("text", "")]
    assert len(header) == 1, texts
    assert header[0]["ts"] in [p if isinstance(p, str) else p.get("ts") for p in channel["pins"]]
    phase1 = h.bot.svc.runbook.phases[0]
    for step in phase1.steps:
        assert sum(f"Step {step.number}: {step.title}" in t for t in texts) == 1, (step.title, texts)
    for message in channel["messages"]:
        if message.get("blocks"):
            assert schema_errors(message["blocks"]) == []
    return channel


async def test_rollback_start_payment_opens_a_war_room_with_the_payment_scenario(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        delivery = await h.command("U500OC01", "start payment --version v2.3.1 card payments failing")
        assert delivery["status"] == 200
        incident = await h.only_incident()
        assert incident.scenario_id == "payment_system" and incident.level == "immediate"
        assert incident.version == "v2.3.1" and incident.declared_by == "U500OC01"
        channel = assert_war_room(h, incident)
        assert "payment" in incident.channel_name
        assert channel["topic"]
        general = h.channel("C0GENERAL")["messages"]
        assert any(incident.channel_id in m.get("text", "") for m in general), "link back where /rollback was typed"
        async with h.bot.db.session() as session:
            kinds = [e.kind for e in (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id).order_by(TimelineEvent.id))).all()]
        for kind in ("declared", "phase_started", "channel_created", "invited", "war_room_ready"):
            assert kind in kinds
        assert kinds.index("declared") < kinds.index("channel_created") < kinds.index("war_room_ready")


async def test_alertmanager_payment_alert_opens_an_immediate_incident(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        status, body = await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        assert status == 202 and len(body["opened"]) == 1
        incident = await h.only_incident()
        assert (incident.trigger_id, incident.level, incident.scenario_id) == (
            "payment_failure", "immediate", "payment_system")
        assert "3.4" in incident.evidence
        assert_war_room(h, incident)


async def test_an_alert_storm_opens_exactly_one_incident(tmp_path: Path) -> None:
    """500 notifications for one trigger (re-sends of 7 alerts, concurrent) open one incident; each alert is one
    timeline line (the opener's, then one per new alert in the group) and the repeats change nothing visible."""
    async with harness(tmp_path) as h:
        connector = aiohttp.TCPConnector(limit=50)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def one(i: int) -> int:
                alert = json.loads(json.dumps(PAYMENT_ALERT))
                alert["alerts"][0]["fingerprint"] = f"pay{i % 7}"
                async with session.post(f"{h.app_url}/alerts/alertmanager", json=alert, headers=AUTH) as r:
                    return r.status
            statuses = await asyncio.gather(*(one(i) for i in range(500)))
        await h.advance(0)  # the alert_notes timers, due at once, write the batched lines
        assert set(statuses) == {202}
        incident = await h.only_incident()
        assert await count(h, ReceivedAlert) == 7, "one stored notification per alert: repeats store nothing"
        async with h.bot.db.session() as session:
            kinds = [e.kind for e in (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id,
                col(TimelineEvent.kind).startswith("alert_")))).all()]
            tracked = (await session.exec(select(func.count()).select_from(IncidentAlert))).one()
        assert sorted(kinds) == ["alert_added"] * 6 + ["alert_received"]
        assert tracked == 7
        assert len([c for c in h.state()["channels"] if c["name"].startswith("inc-")]) == 1


async def test_resolved_alert_is_noted_and_does_not_close_the_incident(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        resolved = json.loads(json.dumps(PAYMENT_ALERT))
        resolved["status"] = resolved["alerts"][0]["status"] = "resolved"
        status, body = await post_alert(h, "alertmanager", resolved)
        await h.settle()
        incident = await h.only_incident()
        assert body["resolved_noted"] == [incident.id] and incident.status == "open"


FIRING_FIXTURES = [
    ("alertmanager", "prometheus-alertmanager_webhook-v4_firing_zulip-fixture.json"),
    ("grafana", "grafana_unified-alerting_webhook_firing_docs.json"),
    ("pagerduty", "pagerduty_webhook-v3_incident.triggered_zulip-fixture.json"),
]


@pytest.mark.parametrize(("source", "name"), FIRING_FIXTURES)
async def test_each_real_firing_fixture_opens_an_incident_or_is_refused_as_unmatched(
        tmp_path: Path, source: str, name: str) -> None:
    if not (FIXTURES / name).exists():
        pytest.skip(f"fixture {name} not found under {FIXTURES}")
    async with harness(tmp_path) as h:
        status, body = await post_alert(h, source, json.loads((FIXTURES / name).read_text()))
        await h.settle()
        incidents = await h.incidents()
        if body["opened"]:
            assert status == 202 and len(incidents) == 1
            assert_war_room(h, incidents[0])
        else:
            assert status == 200 and body["unmatched"] and all(u["reason"] for u in body["unmatched"])
            assert incidents == []
        assert await count(h, ReceivedAlert) >= 1


async def test_bad_alert_requests_are_refused_and_store_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        cases = [
            (await post_alert(h, "alertmanager", PAYMENT_ALERT, headers={}), 401),
            (await post_alert(h, "alertmanager", PAYMENT_ALERT, headers={"Authorization": "Bearer wrong"}), 401),
            (await post_alert(h, "alertmanager", None, raw=b"{not json"), 400),
            (await post_alert(h, "alertmanager", {"version": "4", "alerts": "nope"}), 400),
            (await post_alert(h, "pagerduty", {"event": {"event_type": 7}}), 400),
            (await post_alert(h, "generic", {"name": "x", "stauts": "firing"}), 400),
            (await post_alert(h, "alertmanager", None, raw=b"[" + b" " * (1 << 20) + b"]"), 413),
            (await post_alert(h, "nagios", PAYMENT_ALERT), 404),
        ]
        for (status, body), expected in cases:
            assert status == expected, body
            assert "error" in body
        await h.settle()
        assert await count(h, ReceivedAlert) == 0 and await count(h, Incident) == 0


@pytest.mark.parametrize(("text", "says"), [
    ("explode", "Unknown subcommand"),
    ("start --level critical", "Unknown level"),
    ("start paymnt", "Unknown scenario"),
    ("start payment --version '1.0; rm -rf /'", "is not a version"),
])
async def test_bad_commands_get_an_ephemeral_error_with_usage_and_create_nothing(
        tmp_path: Path, text: str, says: str) -> None:
    async with harness(tmp_path) as h:
        delivery = await h.command("U500OC01", text)
        reply = delivery["body"] if isinstance(delivery["body"], dict) else json.loads(delivery["body"])
        assert reply["response_type"] == "ephemeral"
        assert says in reply["text"] and "/rollback start" in reply["text"]
        assert await count(h, Incident) == 0
        assert not [c for c in h.state()["channels"] if c["name"].startswith("inc-")]


@pytest.mark.slow
async def test_slack_failing_part_way_loses_nothing_and_posts_nothing_twice(tmp_path: Path) -> None:
    """With a quarter of Slack calls failing (500s and 429s), the incident and its timeline are complete and
    every war-room message is posted exactly once, after retries."""
    async with harness(tmp_path) as h:
        h.sb.faults.configure(fail_share=0.25, fail_statuses=[500, 429], seed=7)
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        for _ in range(30):
            incident = await h.only_incident()
            if incident.data.get("war_room_ready"):
                break
            await h.advance(6)
        h.sb.faults.configure(fail_share=0)
        incident = await h.only_incident()
        assert incident.data.get("war_room_ready"), "the war room got ready despite failures"
        assert_war_room(h, incident)
        async with h.bot.db.session() as session:
            refs = (await session.exec(select(SlackMessage.key).where(SlackMessage.incident_id == incident.id))).all()
            kinds = {e.kind for e in (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id))).all()}
        assert len(refs) == len(set(refs))
        assert {"declared", "alert_received", "channel_created", "war_room_ready"} <= kinds
        assert len([c for c in h.state()["channels"] if c["name"].startswith("inc-")]) == 1


async def test_the_header_refreshes_each_minute_while_the_incident_is_open(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        assert incident.channel_id

        def header_text() -> str:
            header = next(m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m["text"])
            return json.dumps(header["blocks"])

        assert "0 min of the 30-min RTO" in header_text()
        await h.advance(60)
        assert "1 min of the 30-min RTO" in header_text()
        await h.advance(60)
        assert "2 min of the 30-min RTO" in header_text(), "with nothing else happening, the clock still moves"
        async with h.bot.db.session() as session:
            ticks = (await session.exec(select(func.count()).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "header_tick"))).one()
        assert ticks == 0, "the refresh is not an event on the timeline"


async def test_a_late_header_tick_does_not_replay_the_minutes_it_missed(tmp_path: Path) -> None:
    """The clock jumps 2.5 minutes (a room that was slow to open, a loaded machine): the one tick that was due
    fires, shows the true elapsed time, and schedules the coming minute, not the minute that already passed."""
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        assert incident.channel_id
        assert await h.advance(150) >= 1
        header = next(m for m in h.messages(incident.channel_id) if "Rollback incident" in m["text"])
        assert "2 min of the 30-min RTO" in json.dumps(header["blocks"])
        async with h.bot.db.session() as session:
            ticks = (await session.exec(select(Timer).where(
                Timer.incident_id == incident.id, Timer.kind == "header_tick"))).all()
        assert sorted((t.key.rsplit(":", 1)[-1], t.status) for t in ticks) == [("1", "fired"), ("3", "pending")]
        assert next(t.due_at for t in ticks if t.status == "pending") == incident.declared_at + timedelta(minutes=3)


async def test_a_header_render_that_shows_nothing_new_makes_no_edit(tmp_path: Path) -> None:
    """Re-rendering the header within the minute, nothing changed, sends no chat.update; the next minute (the
    clock moved) and a change of state each send one."""
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment card payments failing")
        incident = await h.only_incident()
        await h.settle()
        async with h.bot.db.session() as session:
            header = (await session.exec(select(SlackMessage).where(
                SlackMessage.incident_id == incident.id, SlackMessage.key == "header"))).one()

        def edits() -> int:
            return sum(1 for c in h.sb.calls if c["method"] == "chat.update" and c["args"].get("ts") == header.ts)

        await h.bot.warroom.refresh(incident.id)  # whatever the room's opening left to show
        before = edits()
        for _ in range(3):
            await h.bot.warroom.refresh(incident.id)
        assert edits() == before, "the same header is not sent again"
        await h.advance(60)
        assert edits() == before + 1, "the minute moved: one edit"
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
        await h.settle()
        assert edits() > before + 1, "the decision shows"
        blocks = json.dumps(next(m for m in h.messages(incident.channel_id or "") if m["ts"] == header.ts)["blocks"])
        assert "Rollback approved" in blocks
