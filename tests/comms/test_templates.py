"""Every communication template of the runbook, rendered for each scenario's incident at the moment it is drafted:
compared with its golden file (tests/comms/golden/, rewrite with UPDATE_GOLDEN=1 and read the diff), checked for
the facts it must state and for the claims it must not make when their facts are absent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.comms.facts import facts
from bot.core.people import People
from bot.reports import history
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import CommsTemplate, Runbook
from bot.runbook.templating import render_template
from bot.store.models import (
    ApprovalRequest,
    CommsDraft,
    Execution,
    Incident,
    ReceivedAlert,
    TimelineEvent,
    Vote,
)

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)  # 09:00 EST
STARTED = T0 - timedelta(minutes=3)  # the alert's startsAt
MOMENTS = {"declared": 0, "decided": 4, "traffic_diverted": 10, "rollback_completed": 30, "resolved": 40}
SLACK_ID = re.compile(r"<@|\b[UW][A-Z0-9]{6,}\b")


@dataclass(frozen=True)
class Case:
    name: str
    trigger: str | None
    scenario: str | None
    snapshot: str  # succeeded | failed | none
    restore: bool


CASES = [
    Case("complete_system_failure", "system_downtime", "complete_system_failure", "succeeded", False),
    Case("database_only", "data_corruption", "database_only", "succeeded", True),
    Case("frontend_only", None, "frontend_only", "failed", False),
    Case("payment_system", "payment_failure", "payment_system", "succeeded", False),
    Case("auth_no_scenario", "auth_failure", None, "none", False),
]


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return load_runbook(DEFAULT_RUNBOOK)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def history_at(runbook: Runbook, case: Case, now: datetime) -> history.History:
    """The incident as the store would hold it at `now`: only what had happened by then."""
    def happened(minutes: float) -> datetime | None:
        return _at(minutes) if _at(minutes) <= now else None

    title = f"{runbook.trigger(case.trigger).title}: {runbook.trigger(case.trigger).match.alertnames[0]}" \
        if case.trigger else "Rollback declared by hand"
    level = runbook.trigger(case.trigger).level if case.trigger else "urgent"
    resolved = happened(40)
    inc = Incident(id="inc-20260115-0900", title=title, runbook=runbook.name, trigger_id=case.trigger, level=level,
                   scenario_id=case.scenario, declared_by="alert:alertmanager" if case.trigger else "U500OC01",
                   declared_at=T0, decision="approved" if happened(4) else None, decided_at=happened(4),
                   rollback_started_at=happened(4), rollback_completed_at=happened(30), resolved_at=resolved,
                   resolved_by="U100TL01" if resolved else None, status="resolved" if resolved else "open",
                   version="v2.3.1", channel_name="inc-20260115-0900-incident",
                   phase_id=runbook.phases[0].id if not happened(4) else runbook.phases[2].id)
    executions: list[Execution] = []
    if case.snapshot != "none" and happened(7):
        executions.append(Execution(
            id="x1", incident_id=inc.id, step_id="system_state_preservation", action_id="emergency_db_snapshot",
            idempotency_key="k1", state=case.snapshot, requested_by="auto", requested_at=_at(5),
            started_at=_at(5), finished_at=_at(7), duration_s=120))
    if case.restore and happened(20):
        executions.append(Execution(
            id="x2", incident_id=inc.id, step_id="restore_backup", action_id="database_rollback",
            idempotency_key="k2", state="succeeded", requested_by="U300DB01", requested_at=_at(12),
            started_at=_at(12), finished_at=_at(20), duration_s=480, params={"restore_point": "latest-stable"}))
    events = [TimelineEvent(incident_id=inc.id, at=T0, kind="declared", text=f"Incident declared: {title}")]
    approvals: list[tuple[ApprovalRequest, list[Vote]]] = []
    if happened(4):
        events.append(TimelineEvent(incident_id=inc.id, at=_at(4), kind="decided", actor="U100TL01",
                                    text="The rollback approved by <@U100TL01>; the rollback clock started"))
        approvals.append((ApprovalRequest(id="r1", incident_id=inc.id, subject="rollback", status="approved",
                                          requested_by="U500OC01", requested_at=T0, decided_at=_at(4)),
                          [Vote(request_id="r1", user_id="U100TL01", vote="approve", roles=["technical_lead"],
                                at=_at(4))]))
    if happened(30):
        events.append(TimelineEvent(incident_id=inc.id, at=_at(30), kind="phase_started",
                                    text="Phase 4: Validation and Recovery started", data={"phase": "x"}))
    alerts = [ReceivedAlert(source="alertmanager", fingerprint="f", status="firing", name=title, received_at=T0,
                            trigger_id=case.trigger, incident_id=inc.id, outcome="opened",
                            payload={"starts_at": STARTED.isoformat()})] if case.trigger else []
    comms = [CommsDraft(incident_id=inc.id, template_id=t.id, text="", drafted_at=_at(MOMENTS[t.when]))
             for t in runbook.communications if _at(MOMENTS[t.when]) <= now]
    return history.build(runbook, inc, [], executions, comms, events, approvals, [], alerts, now)


def render(runbook: Runbook, case: Case, template: CommsTemplate) -> str:
    now = _at(MOMENTS[template.when])
    h = history_at(runbook, case, now)
    people = People(None, {"U100TL01": ["Technical Lead"]})
    people._names["U100TL01"] = "Tara Lin"  # as users.info would answer
    context = facts(h, now, people, "Tara Lin", template)
    return "\n\n".join(render_template(part, context) for part in (template.subject, template.body) if part)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_template_matches_its_golden_file(runbook: Runbook, case: Case) -> None:
    rendered = "".join(f"=== {t.id} ({t.when}, for {t.audience})\n{render(runbook, case, t)}\n\n"
                       for t in runbook.communications)
    golden = GOLDEN / f"{case.name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert rendered == golden.read_text(), f"{golden} differs: rerun with UPDATE_GOLDEN=1 and review the diff"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_templates_state_the_facts_and_only_those(runbook: Runbook, case: Case) -> None:
    source = runbook.trigger(case.trigger) if case.trigger and runbook.trigger(case.trigger).impact \
        else runbook.scenario(case.scenario) if case.scenario else None
    alertnames = {a for t in runbook.triggers for a in t.match.alertnames}
    started = 0 if case.trigger is None else 3  # the alert said the problem began 3 minutes before declaring
    for template in runbook.communications:
        text = render(runbook, case, template)
        where = f"{case.name}/{template.id}"
        assert "{{" not in text and "None" not in text and not SLACK_ID.search(text), where
        assert not any(re.search(rf"\b{a}\b", text) for a in alertnames), f"{where}: a raw alert name"
        assert "degraded service" not in text, where
        if re.search(r"\d\d:\d\d", text):
            assert "EST" in text and "UTC" in text, f"{where}: times in the audience's zone and UTC"
        if template.audience in ("status_page", "customers") and source is not None:
            assert source.impact in text or source.impact_past in text or template.id == "maintenance_notice", \
                f"{where}: the impact statement"
        # data claims only under the facts that back them
        preserved = case.snapshot == "succeeded" and not case.restore
        if "preserved" in text or "no database restore was needed" in text:
            assert preserved and MOMENTS[template.when] >= 7, f"{where}: claims data were preserved"
        if "copy" in text and "data" in text:
            assert case.snapshot == "succeeded" and MOMENTS[template.when] >= 7, f"{where}: claims a snapshot"
        if re.search(r"restored from|restore part of|restore point", text):
            assert case.restore, f"{where}: mentions a database restore that did not happen"
        if template.next_update_minutes:
            assert f"within {template.next_update_minutes:g} minutes" in text, where
    apology = render(runbook, case, next(t for t in runbook.communications if t.id == "apology_explanation"))
    # the real customer impact: from the problem starting to the rollback completing
    assert f"about {30 + started} minutes" in apology, apology
    assert ("Your account and booking data were preserved" in apology) == (case.snapshot == "succeeded"
                                                                           and not case.restore)
    if case.restore:
        assert "may be lost" in apology and "latest-stable" in apology
    executive = render(runbook, case, next(t for t in runbook.communications if t.id == "executive_update"))
    assert "26 minutes after the decision (objective: 30 minutes)" in executive
    assert "Rollback approved by Tara Lin" in executive or "approved by Tara Lin" in executive, executive
    started_local = f"{(STARTED if case.trigger else T0).astimezone(UTC):%H:%M} UTC"
    status = render(runbook, case, next(t for t in runbook.communications if t.id == "status_page_update"))
    assert started_local in status and "within 15 minutes" in status
