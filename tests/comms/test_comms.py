"""Communications, the timeline, validation, resolution and the report, end to end through the sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import select

from bot.cli import runbook as runbook_cli
from bot.core.webserver import start_site
from bot.runbook.loader import DEFAULT_RUNBOOK
from bot.runbook.procedure import procedure_for
from bot.runbook.templating import render_template
from bot.store.models import CommsDraft, Incident, TimelineEvent
from tests.support.harness import Harness, harness


async def _open(h: Harness) -> Incident:
    await h.command("U500OC01", "start payment --version v2.3.1")
    return await h.only_incident()


def _thread(h: Harness, incident: Incident) -> list[dict[str, Any]]:
    header = next(m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m["text"])
    return header.get("replies", [])


def _draft_message(h: Harness, incident: Incident, title: str) -> dict[str, Any]:
    """A draft is its own message in the channel (where its approver looks), not a reply in the header's thread."""
    assert not any(f"Comms draft · {title}" in r["text"] for r in _thread(h, incident))
    return next(m for m in h.messages(incident.channel_id or "") if f"Comms draft · {title}" in m["text"])


async def _events(h: Harness, incident: Incident) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id))).all())


async def _work_the_procedure(h: Harness, incident: Incident) -> None:
    """Approve the rollback and complete every step as their owners would, then tick the validation lists."""
    decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
    await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
    for step in procedure_for(h.bot.svc.runbook, incident.scenario_id).steps():
        h.clock.advance(60)
        await h.bot.checklists.complete_step(incident.id, step.id, "U100TL01", "done", authorize=False)
    await h.settle()
    for checklist in h.bot.svc.runbook.validation:
        message = next(m for m in h.messages(incident.channel_id or "") if m["text"].endswith(checklist.title))
        for item in checklist.items:
            current = next(m for m in h.messages(incident.channel_id or "") if m["ts"] == message["ts"])
            option = next(o for b in current["blocks"] for e in b.get("elements", []) for o in e.get("options", [])
                          if o["text"]["text"].startswith(f"*{item.label}*"))
            await h.click("U400QA01", incident.channel_id or "", message["ts"], value=option["value"],
                          action_id="validation_tick")


async def test_every_template_renders_for_a_real_incident(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        context = await h.bot.comms.context(incident.id)
        assert context["incident"]["channel_name"] == incident.channel_name
        for template in h.bot.svc.runbook.communications:
            text = render_template(template.body, context)
            assert text and "{{" not in text, template.id
        declared = [t.title for t in h.bot.svc.runbook.communications if t.when == "declared"]
        assert declared and all(_draft_message(h, incident, title) for title in declared)


def test_a_broken_template_is_caught_by_runbook_validate(tmp_path: Path, capsys: Any) -> None:
    broken = tmp_path / "runbook.yml"
    shutil.copytree(DEFAULT_RUNBOOK.parent.parent / "examples", tmp_path.parent / "examples", dirs_exist_ok=True)
    text = DEFAULT_RUNBOOK.read_text().replace("{{ service.name }}", "{{ service.name ", 1)
    good = tmp_path / "good.yml"
    good.write_text(DEFAULT_RUNBOOK.read_text())
    assert runbook_cli.validate(str(good)) == 0, "the copy is valid before the template breaks"
    broken.write_text(text)
    capsys.readouterr()
    assert runbook_cli.validate(str(broken)) == 1
    problems = capsys.readouterr().err
    assert "communications[" in problems and "template" in problems.lower(), problems


async def test_only_the_product_manager_approves_a_draft_then_it_is_sent(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        title = next(t.title for t in h.bot.svc.runbook.communications if t.when == "declared")
        draft = _draft_message(h, incident, title)
        await h.click("U100TL01", incident.channel_id or "", draft["ts"], text="Approve")
        async with h.bot.db.session() as session:
            rows = (await session.exec(select(CommsDraft))).all()
        assert all(r.status == "draft" for r in rows)
        assert "Only the Product Manager" in h.sb.ws.ephemerals["U100TL01"][-1]["text"]
        await h.click("U700PM01", incident.channel_id or "", draft["ts"], text="Edit…")
        view = h.sb.ws.views["U700PM01"][-1]
        await h.sb.submit("U700PM01", view["id"], {"text": "We are on it. Next update in 15 minutes."})
        await h.settle()
        await h.click("U700PM01", incident.channel_id or "", draft["ts"], text="Approve")
        await h.click("U700PM01", incident.channel_id or "", draft["ts"], text="Mark as sent")
        sent = _draft_message(h, incident, title)
        assert "(sent)" in sent["text"] and "Next update in 15 minutes" in str(sent["blocks"])
        dms = [m["text"] for c in h.state()["dms"] if c["user"] == "U700PM01"
               for m in c["messages"]]
        assert sum(title in t and "waits for your approval" in t for t in dms) == 1, dms  # told once, by DM
        kinds = [(e.kind, e.actor) for e in await _events(h, incident)]
        assert ("comms_edited", "U700PM01") in kinds and ("comms_approved", "U700PM01") in kinds
        assert ("comms_sent", "U700PM01") in kinds


async def test_an_approver_who_sends_it_themselves_approves_and_marks_it_sent_in_one_click(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        title = next(t.title for t in h.bot.svc.runbook.communications if t.when == "declared")
        draft = _draft_message(h, incident, title)
        await h.click("U100TL01", incident.channel_id or "", draft["ts"], text="Approve and I'll send it")
        assert "Only the Product Manager" in h.sb.ws.ephemerals["U100TL01"][-1]["text"]  # still the approver's call
        await h.click("U700PM01", incident.channel_id or "", draft["ts"], text="Approve and I'll send it")
        sent = _draft_message(h, incident, title)
        assert "(sent)" in sent["text"] and not [b for b in sent["blocks"] if b["type"] == "actions"]
        kinds = [(e.kind, e.actor) for e in await _events(h, incident)]
        assert ("comms_approved", "U700PM01") in kinds and ("comms_sent", "U700PM01") in kinds


async def test_an_approved_status_page_update_is_posted_to_statuspage(tmp_path: Path) -> None:
    received: list[tuple[str, dict[str, Any], str]] = []

    async def statuspage(request: web.Request) -> web.Response:
        received.append((request.path, await request.json(), request.headers.get("Authorization", "")))
        return web.json_response({"id": "sp1"}, status=201)

    app = web.Application()
    app.router.add_post("/v1/pages/{page}/incidents", statuspage)
    runner, port = await start_site(app)
    try:
        async with harness(tmp_path, STATUSPAGE_API_KEY="sp-key", STATUSPAGE_PAGE_ID="page1",
                           STATUSPAGE_API_URL=f"http://127.0.0.1:{port}/v1/") as h:
            incident = await _open(h)
            template = next(t for t in h.bot.svc.runbook.communications if t.audience == "status_page")
            draft = _draft_message(h, incident, template.title)
            await h.click("U700PM01", incident.channel_id or "", draft["ts"], text="Approve")
            assert received and received[0][0] == "/v1/pages/page1/incidents"
            assert received[0][2] == "OAuth sp-key" and received[0][1]["incident"]["name"]
            assert "Posted to Statuspage" in str(_draft_message(h, incident, template.title)["blocks"])
    finally:
        await runner.cleanup()


async def test_timeline_and_notes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        reply = await h.sb.command("U100TL01", incident.channel_id or "", "/rollback", "note cache flushed by hand")
        assert reply["body"]["text"] == "Added to the incident timeline."
        await h.sb.command("U100TL01", incident.channel_id or "", "/rollback", "timeline")
        await h.settle()
        assert not [m for m in h.messages(incident.channel_id or "") if m["text"] == "Incident timeline"], \
            "the timeline answers privately unless asked to post"
        private = [e for e in h.state()["ephemerals"].get("U100TL01", []) if e["text"] == "Incident timeline"]
        text = str(private[0]["blocks"])
        assert "cache flushed by hand" in text and "Incident declared" in text and "<@U100TL01>" in text
        await h.sb.command("U100TL01", incident.channel_id or "", "/rollback", "timeline post")
        await h.settle()
        posted = [m for m in h.messages(incident.channel_id or "") if m["text"] == "Incident timeline"]
        assert posted and "cache flushed by hand" in str(posted[0]["blocks"])


async def test_rollback_alone_in_an_incident_channel_opens_that_incidents_menu_not_a_new_incident(
        tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        reply = await h.sb.command("U100TL01", incident.channel_id or "", "/rollback", "")
        await h.settle()
        text = reply["body"]["text"]
        assert incident.id in text and "/rollback resolve" in text and "/rollback note" in text
        assert h.state()["views"].get("U100TL01", []) == [], "no form for a new incident"
        assert len(await h.bot.incidents.open_incidents()) == 1


async def test_resolve_needs_a_lead_and_validation_or_an_override(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        refused = await h.sb.command("U900OUT1", incident.channel_id or "", "/rollback", "resolve")
        assert "Only the Technical Lead or On-Call Engineer" in refused["body"]["text"]
        early = await h.sb.command("U100TL01", incident.channel_id or "", "/rollback", "resolve")
        assert "validation checklists are not complete" in early["body"]["text"]
        await h.command("U100TL01", 'resolve --override "customer impact over; validated by hand"', incident.channel_id or "")
        incident = await h.only_incident()
        assert incident.status == "resolved" and incident.dedup_key is None and incident.resolved_by == "U100TL01"


async def test_a_complete_incident_resolves_with_its_metrics_report_and_follow_ups(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        await _work_the_procedure(h, incident)
        assert await h.bot.resolution.validation_complete(incident.id)
        await h.command("U100TL01", "resolve", incident.channel_id or "")
        incident = await h.only_incident()
        assert incident.status == "resolved" and incident.rollback_completed_at is not None
        summary = next(m for m in h.messages(incident.channel_id or "") if "Resolved" in m["text"])["text"]
        rollback_minutes = (incident.rollback_completed_at - incident.decided_at).total_seconds() / 60  # type: ignore[operator]
        assert f"Rollback: {round(rollback_minutes, 1):g} min" in summary and "Data restored from backup: no" in summary
        files = h.state()["files"]
        assert len(files) == 1
        report = h.sb.file_content(files[0]["id"]).decode()
        kinds = {e.kind for e in await _events(h, incident)}
        for heading in ("## Timeline", "## Communications", "## Follow-ups", "## Timings against targets"):
            assert heading in report
        assert {"declared", "decided", "resolved"} <= kinds
        assert "Incident declared" in report and "Incident resolved" in report
        assert "## Success metrics" in report and f"{round(rollback_minutes, 1):g} min" in report
        # Follow-ups: the one-hour one fires on the injected clock, once.
        await h.advance(61 * 60)
        await h.advance(60)
        due = [r["text"] for r in _thread(h, incident) if r["text"].startswith("⏰ Follow-up due")]
        assert len(due) == 1 and "Immediate Actions" in due[0]
