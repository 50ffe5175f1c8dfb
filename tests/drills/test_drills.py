"""Drills: a drill- channel with every message marked, one drill per scheduled time across replicas, and a
scorecard of the run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.engine import timeline
from bot.engine.procedure import procedure_for
from bot.engine.scorecard import score
from bot.store.models import Incident, StepState
from tests.support.harness import harness


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
