"""`rollbot demo` runs a whole incident for each scenario; its transcript shows the procedure worked as the
runbook says: one valid channel, the role holders, every phase and step, approvals by role holders, actions in
the scenario's order, escalation DMs on time, comms approved, the report written, and valid Block Kit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlmodel import select

from bot.demo.runner import Demo
from bot.engine.procedure import procedure_for
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.store.db import Database
from bot.store.models import ApprovalRequest, Execution, Incident, TimelineEvent, Vote
from tests.support.blockkit import assert_everything_posted_is_valid

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
SPEED = 90.0


@pytest.mark.parametrize("scenario", [s.id for s in RUNBOOK.scenarios])
async def test_the_demo_runs_the_whole_procedure(tmp_path: Path, scenario: str) -> None:
    transcript = tmp_path / "transcript.json"
    demo = Demo(scenario, SPEED, transcript, tmp_path, quiet=True)
    report = await demo.run()
    state = json.loads(transcript.read_text())
    db = Database(f"sqlite:///{tmp_path / 'rollbot.db'}")
    async with db.session() as session:
        [incident] = (await session.exec(select(Incident))).all()
        executions = (await session.exec(select(Execution).order_by(Execution.started_at))).all()
        rollback = (await session.exec(select(ApprovalRequest).where(ApprovalRequest.subject == "rollback"))).one()
        votes = (await session.exec(select(Vote).where(Vote.request_id == rollback.id))).all()
        events = (await session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id))).all()
    await db.dispose()

    channels = [c for c in state["channels"] if c["id"] == incident.channel_id]
    assert len(channels) == 1 and len([c for c in state["channels"] if c["name"].startswith("inc-")]) == 1
    channel = channels[0]
    assert re.fullmatch(r"[a-z0-9_-]{1,80}", channel["name"])
    assert {"U100TL01", "U200DO01", "U500OC01", "U400QA01", "U700PM01"} <= set(channel["members"])

    procedure = procedure_for(RUNBOOK, scenario)
    texts = [m["text"] for m in channel["messages"]]
    for step in procedure.steps():
        assert any(f"Step {step.number}: {step.title}" in t for t in texts), step.title
    kinds = [e.kind for e in events]
    assert kinds.count("phase_started") == len(procedure.phases)
    assert "procedure_complete" in kinds

    policy = RUNBOOK.level(incident.level).approval
    assert incident.decision == "approved"
    approvers = {v.user_id for v in votes if v.vote == "approve"}
    assert approvers and all(set(v.roles) & set(policy.roles) for v in votes if v.vote == "approve")

    scenario_phase = next(p for p in procedure.phases if p.replaced_by_scenario)
    scenario_steps = {s.id for s in scenario_phase.steps}
    expected = [t.action for s in scenario_phase.steps for t in s.tasks if t.action]
    ran = [e.action_id for e in executions if e.step_id in scenario_steps and e.state == "succeeded"]
    assert ran == expected, "the scenario's actions ran once each, in the scenario's order"
    assert all(e.state == "succeeded" for e in executions)

    assert assert_everything_posted_is_valid(state) >= len(procedure.steps()) + 2  # steps, header, decision

    # The ladder's DMs went out at their simulated times (or earlier, when a missed decision pulled them forward).
    ladder = {r.role: r.minutes for r in RUNBOOK.escalation.management}
    escalated = [e for e in events if e.kind == "escalated"]
    assert escalated, "management heard about it"
    for event in escalated:
        minutes = (event.at - incident.declared_at).total_seconds() / 60
        assert minutes <= ladder[event.data["role"]] + 0.5, (event.text, minutes)
    assert "escalated_early" in kinds or all(
        (e.at - incident.declared_at).total_seconds() / 60 >= ladder[e.data["role"]] for e in escalated)
    assert {"comms_approved", "comms_sent"} <= set(kinds)
    assert incident.status == "resolved" and "report_written" in kinds
    assert report is not None and report.exists() and incident.id in report.read_text()
