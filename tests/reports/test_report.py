"""The post-incident report for each scenario, worked end to end through the sandbox: a text people can paste
(names and roles, never Slack IDs or internal ids; wall-clock times with the time zone), timings equal to those the
timeline gives, the communications as sent, follow-ups with an owner and a due date, rewritten when a comm is sent
after resolution; and `rollbot report --format md|json`."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.cli.main import main as cli_main
from bot.store.models import CommsDraft, Execution, TimelineEvent
from tests.comms.test_comms import _draft_message, _work_the_procedure
from tests.support.harness import Harness, harness

SCENARIOS = {"complete_system_failure": "start 1", "database_only": "start 2", "frontend_only": "start 3",
             "payment_system": "start payment --version v2.3.1"}
SLACK_ID = re.compile(r"<@|<!subteam|\b[UWS][A-Z0-9]{6,}\b")


async def _events(h: Harness, incident_id: str) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident_id).order_by(TimelineEvent.at, TimelineEvent.id))).all())


def _first(events: list[TimelineEvent], kind: str) -> datetime:
    return next(e.at for e in events if e.kind == kind)


def _minutes(a: datetime, b: datetime) -> float:
    return round((b - a).total_seconds() / 60, 1)


def _internal_ids(h: Harness, incident_id: str, executions: list[Execution]) -> set[str]:
    """Ids a reader must never see: runbook ids that are not words, template ids, execution ids, Slack ids."""
    rb = h.bot.svc.runbook
    ids = {a.id for a in rb.actions} | {t.id for t in rb.communications} | {r.id for r in rb.roles}
    ids |= {s.id for p in rb.phases for s in p.steps} | {s.id for sc in rb.scenarios for s in sc.steps}
    ids |= {e.id for e in executions}
    return {i for i in ids if "_" in i or len(i) > 12}  # plain words (e.g. "immediate") may well appear as words


async def _acknowledge(h: Harness, user: str) -> None:
    dm = next(d for d in h.state()["dms"] if d["user"] == user)
    await h.click(user, dm["id"], dm["messages"][0]["ts"], text="Acknowledge")


async def _send_every_draft(h: Harness, incident: Any) -> None:
    async with h.bot.db.session() as session:
        drafts = list((await session.exec(select(CommsDraft).where(CommsDraft.incident_id == incident.id,
                                                                    CommsDraft.status != "sent"))).all())
    for draft in drafts:
        title = next(t.title for t in h.bot.svc.runbook.communications if t.id == draft.template_id)
        for button in ("Approve", "Mark as sent"):
            message = _draft_message(h, incident, title)
            if any(e.get("type") == "button" and e["text"]["text"] == button
                   for b in message["blocks"] for e in b.get("elements", [])):
                await h.click("U700PM01", incident.channel_id or "", message["ts"], text=button)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_the_report_reads_as_a_document_with_the_timeline_s_timings(tmp_path: Path, scenario: str) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", SCENARIOS[scenario])
        incident = await h.only_incident()
        assert incident.scenario_id == scenario
        h.clock.advance(30)
        await _acknowledge(h, "U200DO01")
        await _work_the_procedure(h, incident)
        await _send_every_draft(h, incident)
        h.clock.advance(45)
        await h.command("U100TL01", "resolve", incident.channel_id or "")
        incident = await h.only_incident()
        report = await h.bot.resolution.report(incident.id)
        data = json.loads(await h.bot.resolution.report(incident.id, "json"))
        events = await _events(h, incident.id)
        async with h.bot.db.session() as session:
            executions = list((await session.exec(select(Execution))).all())

        # Nothing a reader cannot use: no Slack ids, no internal ids, no relative "+3m" times.
        assert not SLACK_ID.search(report), SLACK_ID.search(report)
        leaked = [i for i in _internal_ids(h, incident.id, executions) if re.search(rf"\b{re.escape(i)}\b", report)]
        assert not leaked, leaked
        assert not re.search(r"\+\d+m", report)
        assert "Tara Lin (Technical Lead)" in report and "Omar Chen (On-Call Engineer)" in report
        assert "America/New_York" in report and " EST (" in report

        # Timings: what the report says equals what the timeline gives.
        declared, decided, resolved = _first(events, "declared"), _first(events, "decided"), _first(events, "resolved")
        acked = _first(events, "page_acked")
        expected = {"Time to acknowledge": _minutes(declared, acked), "Time to decide": _minutes(declared, decided),
                    "Time to mitigate": _minutes(decided, incident.rollback_completed_at),  # type: ignore[arg-type]
                    "Time to resolve": _minutes(declared, resolved)}
        got = {t["label"]: t["minutes"] for t in data["timings"]}
        for label, minutes in expected.items():
            assert got[label] == minutes, (label, got[label], minutes)
            assert re.search(rf"\| {label} \| [^|]+ \| {minutes:g} min \|", report), label
        assert got["Time to detect"] == 0  # declared by hand: detection is the declaration

        # The curated timeline: key moments in, checkbox ticks folded into their step.
        timeline = report.split("## Timeline", 1)[1].split("## Follow-ups", 1)[0]
        for needle in ("Incident declared", "acknowledged", "approved", "Incident resolved", "Sent: "):
            assert needle in timeline, needle
        assert "☑" not in timeline and "items ticked" in timeline
        assert len(timeline.strip().splitlines()) < len(events)

        # The comms as sent, and the follow-ups owned by a person with a date.
        comms = report.split("## Communications", 1)[1].split("## Timeline", 1)[0]
        sent = [c for c in data["communications"] if c["status"] == "sent"]
        assert sent and all(c["sent_by"] == "Pat Morgan" for c in sent)
        assert comms.count(": sent at ") == len(sent)
        follow = report.split("## Follow-ups", 1)[1]
        assert "Owner: Tara Lin (Technical Lead). Due: 15 January 2026" in follow


async def test_the_report_is_rewritten_when_the_last_comms_go_out_after_resolution(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", SCENARIOS["payment_system"])
        incident = await h.only_incident()
        await _work_the_procedure(h, incident)
        await h.command("U100TL01", "resolve", incident.channel_id or "")
        first = h.sb.file_content(h.state()["files"][0]["id"]).decode()
        assert "### Apology and explanation (for customers): drafted, never approved or sent" in first
        await _send_every_draft(h, incident)
        files = h.state()["files"]
        assert len(files) > 1, "a new report after the apology was sent"
        latest = h.sb.file_content(files[-1]["id"]).decode()
        assert re.search(r"### Apology and explanation \(for customers\): sent at .* by Pat Morgan", latest)
        count = len(files)
        await h.bot.resolution.upload_report(incident.id)  # nothing changed since: no second copy
        assert len(h.state()["files"]) == count


async def test_rollbot_report_prints_markdown_or_json(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", SCENARIOS["payment_system"])
        incident = await h.only_incident()
        await _work_the_procedure(h, incident)
        await h.command("U100TL01", "resolve", incident.channel_id or "")
        monkeypatch.setenv("DATABASE_URL", h.bot.svc.settings.database_url)
        monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
        capsys.readouterr()
        assert await _run_cli(["report", incident.id, "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["incident"]["title"] == "Payment System Failure" and data["timings"]
        assert await _run_cli(["report", incident.id]) == 0
        markdown = capsys.readouterr().out
        assert markdown.startswith("# Post-incident report: Payment System Failure")
        # Without a Slack token people are named by their role, never by their ID.
        assert not SLACK_ID.search(markdown) and "the Technical Lead" in markdown
        # With one, by their names (users.info).
        monkeypatch.setenv("SLACK_BOT_TOKEN", h.sb.bot_token)
        monkeypatch.setenv("SLACK_API_URL", h.sb.api_url)
        assert await _run_cli(["report", incident.id, "--out", str(tmp_path / "r.md")]) == 0
        named = (tmp_path / "r.md").read_text()
        assert "Tara Lin (Technical Lead)" in named and not SLACK_ID.search(named)
        assert await _run_cli(["report", "inc-nope"]) == 1


async def _run_cli(argv: list[str]) -> int:
    return await asyncio.to_thread(cli_main, argv)
