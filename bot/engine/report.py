"""The post-incident report in Markdown: summary, impact, timeline, decisions and approvers, actions with results,
communications, metrics against targets, and the follow-up checklist. Read from the store only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from bot.engine.procedure import procedure_for
from bot.runbook.model import Condition, Runbook
from bot.store.db import Database
from bot.store.models import ApprovalRequest, CommsDraft, Execution, Incident, StepState, TimelineEvent, Vote
from bot.views.common import duration


@dataclass(frozen=True)
class Metric:
    label: str
    target: str
    value: str
    met: bool | None  # None: not measured


@dataclass(frozen=True)
class Metrics:
    rollback_minutes: float | None
    decision_minutes: float | None
    decision_deadline: float
    data_restored: bool
    overdue_steps: list[str]
    success: list[Metric]


def _minutes(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds() / 60, 1) if a and b else None


def compute_metrics(runbook: Runbook, incident: Incident, steps: list[StepState], executions: list[Execution],
                    comms: list[CommsDraft]) -> Metrics:
    procedure = procedure_for(runbook, incident.scenario_id)
    rollback = _minutes(incident.decided_at, incident.rollback_completed_at)
    decision = _minutes(incident.declared_at, incident.decided_at)
    restored = any(e.state == "succeeded" and not e.dry_run and runbook.action(e.action_id).danger == "destructive"
                   for e in executions)
    overdue = []
    for state in steps:
        step = procedure.step(state.step_id)
        done = _minutes(incident.declared_at, state.completed_at)
        if state.status == "done" and done is not None and done > step.window.end:
            overdue.append(f"Step {step.number}: {step.title} ({done - step.window.end:g} min late)")
    recovery = _minutes(incident.declared_at, incident.resolved_at)
    sent = sum(c.status == "sent" for c in comms)
    # measure -> (what to show, the number compared with the runbook's threshold, or a yes/no verdict)
    measured: dict[str, tuple[str, float | bool | None]] = {
        "rollback_minutes": (f"{rollback:g} min" if rollback is not None else "not completed", rollback),
        "data_loss": ("data restored from backup" if restored else "no data restored", not restored),
        "users_affected_pct": ("not measured by Rollbot", None),
        "stakeholders_notified": (f"{sent}/{len(comms)} communications sent", bool(comms) and sent == len(comms)),
        "recovery_minutes": (f"{recovery:g} min" if recovery is not None else "open", recovery),
    }
    success = []
    for metric in runbook.success_metrics:
        shown, value = measured[metric.measure]
        met: bool | None = value if isinstance(value, bool) or value is None else None
        if isinstance(value, float) and metric.op is not None and metric.threshold is not None:
            met = Condition(metric=metric.measure, op=metric.op, threshold=metric.threshold).holds(value)
        success.append(Metric(metric.label, metric.target, shown, met))
    return Metrics(rollback, decision, runbook.level(incident.level).decision_minutes, restored, overdue, success)


async def load(db: Database, incident_id: str) -> tuple[Incident, list[StepState], list[Execution], list[CommsDraft],
                                                          list[TimelineEvent], list[tuple[ApprovalRequest, list[Vote]]]]:
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise KeyError(f"no incident {incident_id}")
        steps = list((await session.exec(select(StepState).where(StepState.incident_id == incident_id))).all())
        executions = list((await session.exec(select(Execution).where(Execution.incident_id == incident_id)
                                               .order_by(col(Execution.requested_at)))).all())
        comms = list((await session.exec(select(CommsDraft).where(CommsDraft.incident_id == incident_id))).all())
        events = list((await session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                           .order_by(col(TimelineEvent.at), col(TimelineEvent.id)))).all())
        requests = list((await session.exec(select(ApprovalRequest).where(
            ApprovalRequest.incident_id == incident_id))).all())
        votes = list((await session.exec(select(Vote).where(
            col(Vote.request_id).in_([r.id for r in requests])))).all())
    return incident, steps, executions, comms, events, [(r, [v for v in votes if v.request_id == r.id]) for r in requests]


def _rollback_line(minutes: float | None) -> str:
    return f"{minutes:g} min from decision to completion" if minutes is not None else "not completed"


async def write_report(db: Database, runbook: Runbook, incident_id: str) -> str:
    incident, steps, executions, comms, events, approvals = await load(db, incident_id)
    m = compute_metrics(runbook, incident, steps, executions, comms)
    start = incident.declared_at
    lines = [f"# Post-incident report: {incident.title}", "",
             f"{'**This was a drill.** ' if incident.is_drill else ''}Incident `{incident.id}`, "
             f"{runbook.level(incident.level).title} level, declared by {incident.declared_by} at "
             f"{start:%Y-%m-%d %H:%M:%S} UTC" + (f", resolved at {incident.resolved_at:%H:%M:%S} UTC"
                                                 if incident.resolved_at else ", still open") + ".", "",
             "## Summary", "",
             f"- Trigger: {runbook.trigger(incident.trigger_id).title if incident.trigger_id else 'declared by hand'}",
             f"- Scenario: {runbook.scenario(incident.scenario_id).title if incident.scenario_id else 'generic'}",
             f"- Decision: {incident.decision or 'none'}"
             + (f" after {m.decision_minutes:g} min (deadline {m.decision_deadline:g} min)" if m.decision_minutes else ""),
             f"- Rollback: {_rollback_line(m.rollback_minutes)} (target {runbook.objectives.rto_minutes:g} min)",
             "", "## Impact", "", incident.evidence or incident.description or "See the timeline.",
             f"- Data restored from backup (data loss): {'yes' if m.data_restored else 'no'}",
             "", "## Decisions and approvers", ""]
    for request, votes in approvals:
        what = "Rollback" if request.subject == "rollback" else f"Action {request.subject}"
        lines.append(f"- {what}: **{request.status}**" + "".join(
            f"\n  - {v.vote} by {v.user_id} ({', '.join(v.roles) or 'no role'}) at +{duration((v.at - start).total_seconds())}"
            for v in votes))
    lines += ["", "## Actions", "", "| action | step | state | exit | duration | by |", "|---|---|---|---|---|---|"]
    for e in executions:
        took = duration((e.finished_at - e.started_at).total_seconds()) if e.finished_at and e.started_at else "—"
        lines.append(f"| {e.action_id}{' (dry run)' if e.dry_run else ''} | {e.step_id} | {e.state} | "
                     f"{'' if e.exit_code is None else e.exit_code} | {took} | {e.requested_by} |")
    lines += ["", "## Communications", ""]
    lines += [f"- {c.template_id}: {c.status}" + (f", approved by {c.approved_by}" if c.approved_by else "")
              + (f", sent by {c.sent_by}" if c.sent_by else "") for c in comms] or ["- none"]
    lines += ["", "## Metrics against targets", "", "| metric | target | result | met |", "|---|---|---|---|"]
    lines += [f"| {s.label} | {s.target} | {s.value} | {'—' if s.met is None else ('yes' if s.met else 'no')} |"
              for s in m.success]
    lines += ["", f"Steps finished after their window: {len(m.overdue_steps)}"] + [f"- {o}" for o in m.overdue_steps]
    lines += ["", "## Timeline", ""]
    lines += [f"- +{duration((e.at - start).total_seconds())} `{e.kind}` {e.text}"
              + (f" ({e.actor})" if e.actor else "") for e in events]
    lines += ["", "## Follow-up checklist", ""]
    for follow in runbook.follow_ups:
        lines.append(f"### {follow.title} (within {duration(follow.within_minutes * 60)}, "
                     f"{runbook.role(follow.owner).title})")
        for group in follow.groups:
            lines.append(f"- **{group.title}**")
            lines += [f"  - [ ] {item}" for item in group.items]
    return "\n".join(lines) + "\n"
