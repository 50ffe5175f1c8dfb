"""The incident channel's topic follows the phase (set only when it changes, in plain words) and its bookmarks
hold the alert's source link, the status page and, once written, the report, against the Slack sandbox."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.decision.views import APPROVE
from bot.runbook.loader import DEFAULT_RUNBOOK
from tests.decision.support import click, refreshed
from tests.incidents.test_war_room import PAYMENT_ALERT, post_alert
from tests.support.harness import Harness, harness

TL = "U100TL01"
STATUS_PAGE = "https://status.example.com/"


def runbook_with_status_page(tmp_path: Path) -> str:
    doc = yaml.safe_load(Path(DEFAULT_RUNBOOK).read_text())
    doc.setdefault("comms", {})["status_page_url"] = STATUS_PAGE
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "examples").symlink_to(Path(DEFAULT_RUNBOOK).resolve().parents[1] / "examples")  # its scripts
    path = tmp_path / "runbooks" / "runbook.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def calls(h: Harness, method: str) -> list[dict]:
    return [c for c in h.sb.calls if c["method"] == method and c["ok"]]


async def test_the_topic_follows_the_phase_and_is_set_only_when_it_changes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        incident = await h.only_incident()
        assert incident.channel_id
        topic = h.channel(incident.channel_id)["topic"]
        assert "Awaiting rollback decision" in topic and "RTO 30 min" in topic
        await h.advance(60)  # a header tick with nothing new: no second call
        await h.advance(60)
        assert len(calls(h, "conversations.setTopic")) == 1

        await click(h, incident, "decision", TL, APPROVE)
        await h.settle()
        phases = h.bot.svc.runbook.phases
        assert f"Phase 1 of {len(phases)}: {phases[0].title}" in h.channel(incident.channel_id)["topic"]
        for step in phases[0].steps:  # the rest of Phase 1 skipped: Phase 2 starts
            await h.bot.checklists.complete_step(incident.id, step.id, None, status="skipped", authorize=False)
        await h.settle()
        incident = await refreshed(h, incident.id)
        assert incident.phase_id == phases[1].id
        topic = h.channel(incident.channel_id)["topic"]
        assert f"Phase 2 of {len(phases)}: {phases[1].title}" in topic, topic
        topics = [c["args"]["topic"] for c in calls(h, "conversations.setTopic")]
        assert len(topics) == len(set(topics)) == 3, topics  # one call per change, none repeated
        for text in topics:
            assert "_" not in text and incident.id not in text and "U100" not in text


async def test_bookmarks_hold_the_alert_source_the_status_page_and_the_report(tmp_path: Path) -> None:
    async with harness(tmp_path, ROLLBOT_RUNBOOK=runbook_with_status_page(tmp_path)) as h:
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        incident = await h.only_incident()
        assert incident.channel_id
        marks = {b["title"]: b for b in h.channel(incident.channel_id)["bookmarks"]}
        assert marks["Alert source"]["link"] == "http://prometheus:9090/graph"
        assert marks["Status page"]["link"] == STATUS_PAGE
        assert "Post-incident report" not in marks  # not written yet

        await h.bot.resolution.upload_report(incident.id)
        await h.settle()
        marks = {b["title"]: b for b in h.channel(incident.channel_id)["bookmarks"]}
        first = marks["Post-incident report"]["link"]
        assert first.startswith("http") and "/files/" in first
        await h.advance(60)
        assert len(calls(h, "bookmarks.add")) == 3  # each once, however often the header ticks

        await h.command(TL, "note the report changes", channel=incident.channel_id)  # a new report text
        await h.bot.resolution.upload_report(incident.id)
        await h.settle()
        marks = {b["title"]: b for b in h.channel(incident.channel_id)["bookmarks"]}
        assert len(h.channel(incident.channel_id)["bookmarks"]) == 3
        assert marks["Post-incident report"]["link"] != first  # the newer report, edited in place
        assert len(calls(h, "bookmarks.edit")) == 1 and len(calls(h, "bookmarks.add")) == 3


async def test_a_topic_slack_refused_is_set_by_the_next_header_tick(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        h.sb.faults.fail_next("conversations.setTopic", 10)  # past the gateway's own retries
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        incident = await h.only_incident()
        assert incident.channel_id and not h.channel(incident.channel_id)["topic"]
        h.sb.faults.next_failures.clear()  # Slack is back
        await h.advance(60)
        assert "Awaiting rollback decision" in h.channel(incident.channel_id)["topic"]
