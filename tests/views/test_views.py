"""Every view the war room posts is valid Block Kit for every step of the default runbook, in every scenario."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.core.snapshot import Snapshot
from bot.incidents.declare_view import declare_modal
from bot.incidents.header import header_blocks
from bot.incidents.status_view import status_text
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.procedure import items_of, procedure_for
from bot.steps.views import MAX_OPTIONS, step_blocks
from bot.store.models import ChecklistItemState, Incident, StepState
from tests.support.blockkit import schema_errors

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
RUNBOOK_LEAD_HOLDER = "U100TL01"


def _snapshot(scenario: str | None, minutes: float = 3) -> Snapshot:
    procedure = procedure_for(RUNBOOK, scenario)
    first = procedure.phases[0]
    incident = Incident(id="inc-1", title="Payments failing", runbook=RUNBOOK.name, level="immediate",
                        trigger_id="payment_failure", scenario_id=scenario, declared_by="U500OC01", declared_at=T0,
                        phase_id=first.id, evidence="alertmanager: 3.4% of payments failing", version="v2.3.1")
    steps = {s.id: StepState(incident_id="inc-1", step_id=s.id, status="active" if s in first.steps else "pending",
                             started_at=T0) for s in procedure.steps()}
    step = first.steps[0]
    item = items_of(step)[0][0]
    items = {(step.id, item): ChecklistItemState(incident_id="inc-1", step_id=step.id, item_id=item, checked=True)}
    return Snapshot(incident=incident, procedure=procedure, steps=steps, items=items,
                    now=T0 + timedelta(minutes=minutes), holders={"on_call_engineer": ["U500OC01"]})


@pytest.mark.parametrize("scenario", [None, *(s.id for s in RUNBOOK.scenarios)])
def test_every_step_message_is_valid_block_kit(scenario: str | None) -> None:
    snap = _snapshot(scenario)
    for step in snap.procedure.steps():
        blocks = [b.to_dict() for b in step_blocks(snap, step)]
        assert len(blocks) <= 50
        assert schema_errors(blocks) == [], step.id
        options = [len(e["options"]) for b in blocks for e in b.get("elements", []) if e.get("type") == "checkboxes"]
        assert all(n <= MAX_OPTIONS for n in options)
        rendered = sum(options) + sum(b["text"]["text"].count("☐") for b in blocks if b["type"] == "section")
        assert rendered == len(items_of(step)), "every checklist item is on the message"


def test_header_shows_overdue_steps_and_the_clock() -> None:
    snap = _snapshot(None, minutes=3)  # Step 1's window (0-2 min) has passed
    blocks = [b.to_dict() for b in header_blocks(snap)]
    assert schema_errors(blocks) == []
    text = str(blocks)
    assert "Overdue" in text and "Step 1" in text and "3 min elapsed" in text and "27 min to RTO" in text and "RTO 30 min" in text


def test_ticked_items_render_checked() -> None:
    snap = _snapshot(None)
    step = snap.procedure.steps()[0]
    first_box = next(e for b in step_blocks(snap, step) for e in getattr(b, "elements", []) or []
                     if getattr(e, "type", "") == "checkboxes")
    assert [o.value for o in first_box.initial_options] == [items_of(step)[0][0]]


def test_status_text_counts_steps_and_time_left() -> None:
    text = status_text(_snapshot(None, minutes=12))
    assert "steps done 0/10" in text and "18m00s left" in text and "Overdue: Step 1" in text


def test_declare_modal_is_valid() -> None:
    view = declare_modal(RUNBOOK, "C0GENERAL").to_dict()
    assert schema_errors(view["blocks"]) == []
    assert len(view["title"]["text"]) <= 24


def test_header_says_who_leads_who_approved_what_is_next_by_whom_and_by_when() -> None:
    snap = _snapshot("payment_system", minutes=6)
    second = snap.procedure.phases[1]
    snap.incident.phase_id, snap.incident.decision = second.id, "approved"
    snap.incident.decided_at = T0 + timedelta(minutes=1)
    for step in snap.procedure.phases[0].steps:
        snap.steps[step.id].status = "done"
    for step in second.steps:
        snap.steps[step.id].status = "active"
    snap.approvals = (("U100TL01", T0 + timedelta(minutes=1)),)
    snap.holders = {"technical_lead": ["U100TL01"], "devops_lead": ["U200DO01"],
                    RUNBOOK.incident_lead_roles[0]: [RUNBOOK_LEAD_HOLDER]}
    blocks = [b.to_dict() for b in header_blocks(snap)]
    assert schema_errors(blocks) == []
    [who] = [b["text"]["text"] for b in blocks if b.get("block_id") == "header_who_what_when"]
    lead_role = RUNBOOK.role(RUNBOOK.incident_lead_roles[0]).title
    assert f"*Incident lead:* <@{RUNBOOK_LEAD_HOLDER}> ({lead_role})" in who
    assert "*Rollback approved* by <@U100TL01> at 09:01:00 UTC" in who
    step = second.steps[0]
    assert f"Step {step.number}: {step.title} · owner DevOps Lead <@U200DO01>" in who
    due = T0 + timedelta(minutes=step.window.end)
    assert f"Step {step.number} by <!date^{int(due.timestamp())}^{{time}}|09:07:00 UTC>" in who, who
    assert "6 min of the 30-min RTO" in who


def test_header_before_the_decision_names_its_deadline_as_the_next_due_item() -> None:
    snap = _snapshot(None, minutes=3)  # the immediate level's 2-minute deadline has passed
    [who] = [b["text"]["text"] for b in (b.to_dict() for b in header_blocks(snap))
             if b.get("block_id") == "header_who_what_when"]
    deadline = T0 + timedelta(minutes=2)
    assert f"the rollback decision, overdue since <!date^{int(deadline.timestamp())}^{{time}}|09:02:00 UTC>" in who
    assert "Step 1: Incident Detection and Alert · owner" in who


def test_a_finished_step_collapses_to_one_line_with_who_when_how_long_and_lateness() -> None:
    snap = _snapshot(None, minutes=4)
    step = snap.procedure.steps()[0]  # due at 09:02
    state = snap.steps[step.id]
    state.status, state.completed_by = "done", "U500OC01"
    state.completed_at = T0 + timedelta(minutes=3, seconds=30)
    blocks = [b.to_dict() for b in step_blocks(snap, step)]
    assert schema_errors(blocks) == []
    assert [b["type"] for b in blocks] == ["section", "context"], "no checkboxes, no buttons once done"
    line = blocks[0]["text"]["text"]
    assert f"Step {step.number}: {step.title}* — done by <@U500OC01> at 09:03:30 UTC (1m30s late, took 3m30s)" in line


def test_an_open_step_gives_its_deadline_as_a_clock_time() -> None:
    snap = _snapshot(None, minutes=1)
    step = snap.procedure.steps()[0]
    head = step_blocks(snap, step)[0].to_dict()["text"]["text"]
    assert "due by 09:02:00 UTC" in head and "window" not in head
