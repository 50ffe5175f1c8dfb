"""Drills: a drill- channel with every message marked, one drill per scheduled time across replicas, and a
scorecard of the run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core import timeline
from bot.reports.scorecard import score
from bot.runbook.procedure import procedure_for
from bot.store.models import Incident, StepState
from tests.support.harness import Harness, harness


async def test_rollback_drill_opens_a_drill_channel_with_every_message_marked(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U100TL01", "drill database")
        incident = await h.only_incident()
        assert incident.is_drill and incident.scenario_id == "database_only"
        assert incident.channel_name and incident.channel_name.startswith("drill-")
        messages = h.messages(incident.channel_id)
        assert messages and all("DRILL" in m["text"] for m in messages if m["user"] == "U0ROLLBOT"), \
            [m["text"] for m in messages]


async def test_a_scheduled_drill_runs_once_per_scheduled_time_across_replicas(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        drill = h.bot.svc.runbook.drills[0]
        fire = datetime(2026, 4, 1, 10, 0, 3, tzinfo=UTC)
        # Two replicas' cron jobs fire for the same minute at (nearly) the same time.
        results = await asyncio.gather(h.bot.drills.scheduled(drill.id, fire),
                                       h.bot.drills.scheduled(drill.id, fire + timedelta(seconds=1)))
        await h.settle()
        assert sum(r is not None for r in results) == 1
        incident = await h.only_incident()
        assert incident.is_drill and incident.data["drill_id"] == drill.id
        assert incident.declared_by == f"schedule:{drill.id}"
        next_time = await h.bot.drills.scheduled(drill.id, fire + timedelta(days=92))
        assert next_time is not None


async def test_closing_a_drill_posts_and_stores_its_scorecard(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U100TL01", "drill payment")
        incident = await h.only_incident()
        step1 = h.bot.svc.runbook.phases[0].steps[0]
        h.clock.advance(90)
        await h.bot.checklists.complete_step(incident.id, step1.id, "U500OC01", "done", authorize=False)
        h.clock.advance(600)
        async with h.bot.db.session() as session:
            row = await session.get(Incident, incident.id)
            assert row is not None
            row.status, row.resolved_at = "resolved", h.clock.now()
            timeline.record(session, incident.id, h.clock.now(), "resolved", "drill over")
        await h.bot.svc.events.emit("closed", incident_id=incident.id)
        await h.settle()
        stored = (await h.only_incident()).data["scorecard"]
        assert stored["steps"][0]["status"] == "on_time" and stored["steps"][0]["done_at_min"] == 1.5
        assert stored["decision_min"] is None and stored["skipped"]
        card = [m for m in h.messages(incident.channel_id) if "Scorecard" in m["text"]]
        assert len(card) == 1 and "No rollback decision" in str(card[0]["blocks"])


def test_scorecard_marks_late_skipped_and_on_time_steps() -> None:
    from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook

    runbook = load_runbook(DEFAULT_RUNBOOK)
    procedure = procedure_for(runbook, None)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    incident = Incident(id="d", title="t", runbook=runbook.name, level="urgent", declared_by="U1", declared_at=t0,
                        decided_at=t0 + timedelta(minutes=6))
    s1, s2, s3 = procedure.steps()[:3]
    states = {
        s1.id: StepState(incident_id="d", step_id=s1.id, status="done", completed_at=t0 + timedelta(minutes=1)),
        s2.id: StepState(incident_id="d", step_id=s2.id, status="done", completed_at=t0 + timedelta(minutes=9)),
        s3.id: StepState(incident_id="d", step_id=s3.id, status="skipped", completed_at=t0 + timedelta(minutes=9)),
    }
    card = score(incident, procedure, states, runbook.drills[0], t0 + timedelta(minutes=40))
    assert [s.status for s in card.steps[:3]] == ["on_time", "late", "skipped"]
    assert card.steps[1].late_min == 4 and not card.decision_on_time and card.decision_deadline_min == 5
    assert card.phases[0].done_at_min == 9 and not card.phases[0].on_time
    assert card.objectives == runbook.drills[0].items and card.total_min == 40


async def _ran(h: Harness, incident_id: str, action_id: str) -> bool:
    """Started by itself already (the snapshot on approval, the configuration backup after it)."""
    from sqlmodel import select

    from bot.store.models import Execution

    async with h.bot.db.session() as session:
        return (await session.exec(select(Execution).where(Execution.incident_id == incident_id,
                                                           Execution.action_id == action_id))).first() is not None


async def test_a_whole_drill_with_statuspage_and_an_http_check_configured_sends_them_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Statuspage and the traffic restore's HTTP health check both point at a local server that records every
    request. A drill goes from declaration through the approved status-page draft, the rollback decision and every
    action of its procedure (the traffic restore and its checks included): the server sees zero requests, and the
    timeline says what was kept inside."""
    from aiohttp import web
    from sqlmodel import select

    from bot.comms.views import text_version
    from bot.core.webserver import start_site
    from bot.store.models import CommsDraft, Execution, TimelineEvent

    received: list[str] = []

    async def record(request: web.Request) -> web.Response:
        received.append(f"{request.method} {request.path}")
        return web.json_response({"id": "sp1", "status": "ok"}, status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner, port = await start_site(app)
    monkeypatch.setenv("ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK", f"http://127.0.0.1:{port}/health")
    try:
        async with harness(tmp_path, STATUSPAGE_API_KEY="sp-key", STATUSPAGE_PAGE_ID="page1",
                           STATUSPAGE_API_URL=f"http://127.0.0.1:{port}/v1/") as h:
            await h.command("U100TL01", "drill payment")
            incident = await h.only_incident()
            assert incident.is_drill
            async with h.bot.db.session() as session:
                draft = (await session.exec(select(CommsDraft).where(
                    CommsDraft.template_id == "status_page_update"))).one()
            await h.bot.comms.approve(draft.id or 0, "U700PM01", text_version(draft.text))
            request = await h.bot.approvals.rollback_request(incident.id)
            assert request is not None
            await h.bot.approvals.vote(request.id, "U100TL01", "approve")
            await h.settle()
            await h.bot.executions.idle()  # the snapshot the approval started: the rollback runs only after it
            procedure = procedure_for(h.bot.svc.runbook, incident.scenario_id)
            for step in procedure.steps():
                for task in step.tasks:
                    if task.action and not await _ran(h, incident.id, task.action):
                        await h.bot.executions.request(incident.id, step.id, task.id, task.action, "U100TL01",
                                                       auto=True)
            await h.bot.executions.idle()
            await h.settle()
            async with h.bot.db.session() as session:
                runs = (await session.exec(select(Execution).where(Execution.incident_id == incident.id))).all()
                kept = (await session.exec(select(TimelineEvent).where(
                    TimelineEvent.kind == "drill_kept_inside"))).all()
                approved = await session.get(CommsDraft, draft.id)
            assert approved is not None and approved.status == "approved"
            assert any(r.action_id == "gradual_traffic_restore" for r in runs), [r.action_id for r in runs]
            assert all(r.dry_run for r in runs)
            assert [k.data["integration"] for k in kept] == ["statuspage"]
            assert received == [], received
    finally:
        await runner.cleanup()
