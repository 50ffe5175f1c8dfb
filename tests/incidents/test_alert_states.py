"""Alerts tracked by fingerprint per incident: a repeat changes nothing visible, a new alert in the group or a
state change is one timeline line with its labels; resolution shows per alert in the header and `/rollback list`;
when every alert has resolved the thread says so once and the incident lead (only) gets Move to validation /
Resolve."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.alerts.parsers import parse
from bot.store.models import Incident, TimelineEvent
from tests.incidents.test_war_room import PAYMENT_ALERT, post_alert
from tests.support.harness import Harness, harness

LEAD = "U100TL01"  # Technical Lead: an incident lead role
NOT_LEAD = "U200DO01"  # DevOps Lead


def alert(fingerprint: str, service: str, status: str = "firing") -> dict[str, Any]:
    body = copy.deepcopy(PAYMENT_ALERT)
    body["status"] = status
    one = body["alerts"][0]
    one.update(status=status, fingerprint=fingerprint)
    one["labels"]["service"] = service
    return body


async def alert_lines(h: Harness, incident_id: str) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, col(TimelineEvent.kind).startswith("alert"))
            .order_by(col(TimelineEvent.id)))).all())


def header_text(h: Harness, incident: Incident) -> str:
    [head] = [m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m.get("text", "")]
    return json.dumps(head["blocks"], ensure_ascii=False)


def thread_posts(h: Harness, incident: Incident, needle: str) -> list[dict[str, Any]]:
    return [r for m in h.messages(incident.channel_id or "") for r in m.get("replies", []) if needle in r["text"]]


async def opened(h: Harness) -> Incident:
    await post_alert(h, "alertmanager", alert("fp-pay", "payments"))
    await h.advance(0)
    return await h.only_incident()


async def test_a_repeat_of_a_known_firing_alert_changes_nothing_visible(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await opened(h)
        await h.quiet()  # the opening's own work done (the health check it starts included): the state to compare
        lines, calls = await alert_lines(h, incident.id), len(h.sb.calls)
        for _ in range(5):
            status, body = await post_alert(h, "alertmanager", alert("fp-pay", "payments"))
            assert status == 202 and body["repeats"] == 1
        await h.quiet()
        assert [e.id for e in await alert_lines(h, incident.id)] == [e.id for e in lines]
        assert len(h.sb.calls) == calls, [(c["method"], str(c["args"])[:300]) for c in h.sb.calls[calls:]]
        async with aiohttp.ClientSession() as http, http.get(f"{h.app_url}/metrics") as response:
            metrics = await response.text()
        assert 'rollbot_alerts_total{outcome="repeat",source="alertmanager"} 5.0' in metrics, "counted, nothing else"


async def test_a_new_alert_and_each_state_change_is_one_line_with_its_labels(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await opened(h)
        await post_alert(h, "alertmanager", alert("fp-db", "<db>&co"))  # untrusted label text
        await post_alert(h, "alertmanager", alert("fp-db", "<db>&co"))  # a repeat: nothing
        await post_alert(h, "alertmanager", alert("fp-db", "<db>&co", "resolved"))
        await post_alert(h, "alertmanager", alert("fp-db", "<db>&co", "resolved"))  # a repeat of the resolution
        await post_alert(h, "alertmanager", alert("fp-db", "<db>&co"))  # firing again
        await h.advance(0)
        lines = await alert_lines(h, incident.id)
        assert [e.kind for e in lines] == ["alert_received", "alert_added", "alert_resolved", "alert_fired"]
        added = lines[1].text
        assert "New alert in the group" in added and "service &lt;db&gt;&amp;co" in added and "severity critical" in added
        assert "<db>" not in added and "{" not in added, "plain words, escaped"
        assert lines[2].text.startswith("PaymentFailureRateHigh resolved")


async def test_one_service_resolved_and_one_still_down_shows_as_such_then_all_resolved_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await opened(h)
        await post_alert(h, "alertmanager", alert("fp-api", "checkout"))
        await h.advance(0)
        assert "Firing alerts (2)" in header_text(h, incident)
        await post_alert(h, "alertmanager", alert("fp-pay", "payments", "resolved"))
        await h.advance(0)
        head = header_text(h, incident)
        assert "Firing alerts (1 of 2)" in head and "checkout" in head
        assert "~PaymentFailureRateHigh~ · payments · resolved at" in head
        assert not thread_posts(h, incident, "Every alert of this incident has resolved")
        listed = await h.sb.command(NOT_LEAD, "C0GENERAL", "/rollback", "list")
        assert "1 of 2 alerts firing" in json.dumps(listed)

        await post_alert(h, "alertmanager", alert("fp-api", "checkout", "resolved"))
        await post_alert(h, "alertmanager", alert("fp-api", "checkout", "resolved"))  # the repeat says nothing
        await h.advance(0)
        await h.advance(0)
        assert "All 2 alerts resolved" in header_text(h, incident)
        [post] = thread_posts(h, incident, "Every alert of this incident has resolved")
        assert "PaymentFailureRateHigh" in post["text"]
        listed = await h.sb.command(NOT_LEAD, "C0GENERAL", "/rollback", "list")
        assert "all 2 alerts resolved" in json.dumps(listed)
        assert (await h.only_incident()).status == "open", "resolution of alerts never closes the incident"


async def test_only_the_incident_lead_moves_it_to_validation_from_the_all_resolved_post(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await opened(h)
        await post_alert(h, "alertmanager", alert("fp-pay", "payments", "resolved"))
        await h.advance(0)
        await h.advance(0)
        [post] = thread_posts(h, incident, "Every alert of this incident has resolved")
        channel = incident.channel_id or ""
        before = (await h.only_incident()).phase_id
        await h.click(NOT_LEAD, channel, post["ts"], action_id="alerts_resolved_validate")
        assert (await h.only_incident()).phase_id == before, "a refusal changes nothing"
        refused = [e.text for e in await _events(h, incident.id, "interaction_refused")]
        assert refused, "the refusal is on the timeline"
        await h.click(LEAD, channel, post["ts"], action_id="alerts_resolved_validate")
        after = await h.only_incident()
        assert after.phase_id == "validation_recovery"
        assert [e.actor for e in await _events(h, incident.id, "moved_to_validation")] == [LEAD]


async def _events(h: Harness, incident_id: str, kind: str) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, TimelineEvent.kind == kind))).all())


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_a_repeat_is_one_transaction_of_one_statement_and_no_slack_call(tmp_path: Path, backend: str) -> None:
    """The storm's cheap path, counted rather than timed: a repeat of a known firing alert is one statement (the
    indexed read of its incident_alerts row), no write transaction, and no Slack call."""
    async with harness(tmp_path, backend) as h:
        await opened(h)
        await h.quiet()  # the opening's own work done (Phase 1's health check runs a real process): counted from here
        [repeat] = parse("alertmanager", alert("fp-pay", "payments"))
        statements: list[str] = []
        transactions: list[int] = []
        engine, reads = h.bot.db.engine.sync_engine, h.bot.db.read_engine.sync_engine

        me = asyncio.current_task()  # the war room's own work may still write meanwhile: count only the intake's

        def on_execute(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
            # SQLite's BEGIN IMMEDIATE is issued on each transaction's begin: counted as the transaction
            if asyncio.current_task() is me and not sql.startswith("BEGIN"):
                statements.append(sql)

        def on_begin(_conn: Any) -> None:
            if asyncio.current_task() is me:
                transactions.append(1)

        calls = len(h.sb.calls)
        for target in {engine, reads}:
            event.listen(target, "before_cursor_execute", on_execute)
        event.listen(engine, "begin", on_begin)
        try:
            result = await h.bot.intake.receive([repeat])
        finally:
            for target in {engine, reads}:
                event.remove(target, "before_cursor_execute", on_execute)
            event.remove(engine, "begin", on_begin)
        assert result.repeats == 1 and result.repeated and not (result.opened or result.attached)
        assert len(statements) == 1 and statements[0].lstrip().upper().startswith("SELECT"), statements
        assert "incident_alerts" in statements[0]
        assert transactions == [], "no write transaction (on SQLite no BEGIN IMMEDIATE)"
        await h.quiet()
        assert len(h.sb.calls) == calls
