"""`rollbot demo` runs a whole incident for each scenario; its transcript shows the procedure worked as the
runbook says: one valid channel, the role holders, every phase and step, approvals by role holders, actions in
the scenario's order, escalation DMs on time, comms approved, the report written, and valid Block Kit. It runs
beside two CPU-burning processes: the demo's simulated clock moves only when the bot is idle, so a loaded machine
changes how long it takes, not what happens or when (in simulated time)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlmodel import select

from bot.demo.runner import Demo
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.procedure import procedure_for
from bot.store.db import Database
from bot.store.models import ApprovalRequest, Execution, Incident, TimelineEvent, Vote
from tests.support.blockkit import SCHEMA, assert_everything_posted_is_valid
from tests.support.plain_words import offenders

pytestmark = pytest.mark.slow  # end to end: scheduled first, so parallel workers finish together

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
AS_FAST_AS_IT_GOES = 0.0  # no pacing: the simulated timeline is the same at any pace


@pytest.fixture(scope="module")
def busy_machine() -> Iterator[None]:
    """Two processes burning CPU beside the demo, as on a loaded 2-core CI machine; killed after."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


# Every scenario over HTTP; one scenario again over Socket Mode, where Slack's requests bypass the HTTP route.
RUNS = [(s.id, "http") for s in RUNBOOK.scenarios] + [("payment_system", "socket_mode")]


@pytest.mark.parametrize(("scenario", "transport"), RUNS)
async def test_the_demo_runs_the_whole_procedure(tmp_path: Path, scenario: str, transport: str, busy_machine: None,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    transcript = tmp_path / "transcript.json"
    demo = Demo(scenario, AS_FAST_AS_IT_GOES, transcript, tmp_path, quiet=True, socket_mode=transport == "socket_mode")
    with caplog.at_level(logging.ERROR):
        report = await demo.run()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no errors, no traceback at shutdown"
    state = json.loads(transcript.read_text())
    _assert_every_request_came_over(transport, state, demo.metrics.registry)
    assert offenders(state, RUNBOOK) == [], "plain words: no runbook ids, raw user IDs or regexes a person reads"
    # The sandbox grants manifest.yml's scopes only: the whole incident needs nothing beyond them.
    assert not [c for c in state["calls"] if c["error"] == "missing_scope"]
    assert not [c for c in state["calls"] if c["error"] == "not_in_channel"]
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

    if SCHEMA.exists():  # Slack's Block Kit schema comes with ../shared; the rest of the run is checked without it
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
    assert incident.resolved_at is not None
    rto = timedelta(minutes=RUNBOOK.objectives.rto_minutes)
    assert incident.resolved_at - incident.declared_at <= rto, "resolved inside the RTO, in simulated time"
    assert report is not None and report.exists() and incident.id in report.read_text()


def _assert_every_request_came_over(transport: str, state: dict, registry: CollectorRegistry) -> None:
    """Every delivery went over `transport`, and each was counted and its ack latency measured by kind."""
    deliveries = state["deliveries"]
    assert deliveries and {d.get("via", "http") for d in deliveries} == {transport}
    assert all(d["status"] == 200 for d in deliveries), [d for d in deliveries if d["status"] != 200][:3]
    kinds = {"command": "command", "block_actions": "block_actions", "view_submission": "view_submission"}
    for kind in {kinds[d["kind"]] for d in deliveries if d["kind"] in kinds}:
        sent = sum(1 for d in deliveries if d["kind"] == kind)
        assert registry.get_sample_value("rollbot_slack_requests_total", {"kind": kind}) == sent, kind
        assert registry.get_sample_value("rollbot_slack_ack_seconds_count", {"kind": kind}) == sent, kind
