"""The real chain: the test's exporter -> Prometheus rules -> Alertmanager -> `rollbot`'s webhook. A payment failure
ratio over 2 % (sent as a ratio with `unit: ratio`) opens the payment incident with its war room, and the header
lists the alert with Prometheus' generatorURL and the rule's runbook_url; an alert the runbook does not know
(`ApiLatencyP95High`) is posted to triage; Alertmanager's repeat notifications of the firing alert add nothing
to the timeline; when the ratio falls back, Alertmanager's `resolved` shows in the header and the thread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from bot.alerts.triage_view import DECLARE_ACTION
from bot.store.models import Incident, ReceivedAlert, TimelineEvent
from tests.support.harness import Harness, harness
from tests.support.prom import alertmanager, exporter, prometheus, wait_until

pytestmark = pytest.mark.slow  # end to end: scheduled first, so parallel workers finish together

RULES = [
    {"alert": "PaymentFailureRateHigh", "expr": "payment_failure_ratio > 0.02",
     "labels": {"severity": "critical", "unit": "ratio"},
     "annotations": {"summary": "Payments failing", "value": "{{ $value }}", "runbook_url": "https://wiki.example/pay"}},
    {"alert": "ApiLatencyP95High", "expr": "api_latency_p95_seconds > 0.5", "labels": {"severity": "warning"},
     "annotations": {"summary": "API slow", "value": "{{ $value }}"}},
]


async def alert_lines(h: Harness, incident_id: str) -> list[tuple[int | None, str]]:
    async with h.bot.db.session() as session:
        rows = (await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id, col(TimelineEvent.kind).startswith("alert")))).all()
    return [(r.id, r.kind) for r in rows]


async def metric(h: Harness, line: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{h.app_url}/metrics") as response:
        text = await response.text()
    return next((float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(line)), 0.0)


def header(h: Harness, incident: Incident) -> str:
    head = next((m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m.get("text", "")), None)
    return json.dumps(head["blocks"], ensure_ascii=False) if head else ""


async def test_prometheus_rule_through_alertmanager_opens_the_incident(tmp_path: Path) -> None:
    async with harness(tmp_path, ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h, exporter() as exp, \
            alertmanager(tmp_path / "am", webhook_url=f"{h.app_url}/alerts/alertmanager",
                         bearer_token="test-alert-token", repeat_interval="2s") as am, \
            prometheus(tmp_path / "prom", targets=[exp.target], rules=RULES, alertmanager=am.url) as prom:
        exp.set("payment_failure_ratio", 0.034, service="payments")
        exp.set("api_latency_p95_seconds", 0.8, service="api")
        await prom.wait_for_value("payment_failure_ratio", lambda v: v == 0.034, "the scrape")

        async def incidents() -> list[Incident]:
            await h.settle()
            return await h.incidents()

        [incident] = await wait_until(incidents, "the incident opened by Alertmanager's webhook")
        assert incident.trigger_id == "payment_failure" and incident.level == "immediate"
        assert "0.034" in (incident.evidence or "")
        async with h.bot.db.session() as session:
            stored = (await session.exec(select(ReceivedAlert))).all()
        assert {(a.source, a.outcome) for a in stored} >= {("alertmanager", "opened")}

        async def opened() -> str:  # the war room opens after the webhook's answer
            await h.settle()
            [current] = await h.incidents()
            text = header(h, current) if current.channel_id else ""
            return text if "Firing alerts" in text else ""

        text = await wait_until(opened, "the header listing the firing alert")
        assert "/graph?g0.expr=" in text and "|source>" in text  # the link to Prometheus' generatorURL
        assert "<https://wiki.example/pay|runbook>" in text

        async def triaged() -> list[dict[str, Any]]:
            await h.advance(0)
            return [m for m in h.messages("C0GENERAL") if DECLARE_ACTION in json.dumps(m.get("blocks") or [])]

        [post] = await wait_until(triaged, "the unmatched alert's triage post")
        assert "ApiLatencyP95High" in json.dumps(post["blocks"]) and "service" in json.dumps(post["blocks"])

        # Alertmanager repeats the firing group every 2 s: counted as repeats, nothing on the timeline.
        [incident] = await h.incidents()
        await h.advance(0)
        quiet = await alert_lines(h, incident.id)
        seen = await metric(h, 'rollbot_alerts_total{outcome="repeat",source="alertmanager"}')

        async def repeated() -> bool:
            await h.advance(0)
            return await metric(h, 'rollbot_alerts_total{outcome="repeat",source="alertmanager"}') >= seen + 1

        await wait_until(repeated, "a repeat notification from Alertmanager")
        assert await alert_lines(h, incident.id) == quiet, "a repeat of a known firing alert changes nothing visible"

        exp.set("payment_failure_ratio", 0.001, service="payments")

        async def resolved() -> bool:
            await h.advance(0)
            return "All 1 alert resolved" in header(h, incident)

        await wait_until(resolved, "Alertmanager's resolved notification in the header")
        replies = [r["text"] for m in h.messages(incident.channel_id or "") for r in m.get("replies", [])]
        assert [t for t in replies if "Every alert of this incident has resolved" in t]
        added = [kind for line, kind in await alert_lines(h, incident.id) if (line, kind) not in quiet]
        assert sorted(added) == ["alert_resolved", "alerts_all_resolved"], "the state change is one line, then the summary"
