"""What happened against the plan: one model of an incident, read from the store, that the post-incident report,
the drill scorecard and the comms' facts all use. `build` is pure (rows in, history out); `load` reads the rows.

It holds the moments that matter (problem started, detected, declared, first acknowledgement, decision, service
restored, resolved), the timings between them against the runbook's targets, what the data actions did, the
curated timeline of key events (checkbox ticks folded into their step), and the steps against their windows."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlmodel import col, select

from bot.reports.scorecard import Scorecard, score
from bot.runbook.model import Condition, Drill, Runbook
from bot.runbook.procedure import Procedure, procedure_for
from bot.store.db import Database
from bot.store.models import (
    ApprovalRequest,
    CommsDraft,
    Execution,
    Incident,
    Page,
    ReceivedAlert,
    StepState,
    TimelineEvent,
    Vote,
)

# Timeline kinds the curated timeline keeps as they are (the rest are folded or left to the full log).
KEY_KINDS = frozenset({
    "declared", "paged", "page_acked", "escalated", "decision_overdue", "decided", "level_changed", "role_override",
    "phase_started", "step_done", "step_skipped", "resolved", "comms_sent", "statuspage_posted", "note",
    "execution_interrupted", "scenario_run_started",
})


@dataclass(frozen=True)
class KeyEvent:
    at: datetime
    kind: str
    text: str  # may hold <@U…> mentions: the report turns them into names
    actor: str | None = None


@dataclass(frozen=True)
class Timing:
    label: str
    span: str  # "from the problem starting to the incident being declared"
    minutes: float | None
    target_minutes: float | None
    target: str = ""

    @property
    def met(self) -> bool | None:
        if self.minutes is None or self.target_minutes is None:
            return None
        return self.minutes <= self.target_minutes


@dataclass(frozen=True)
class Metric:
    label: str
    target: str
    value: str
    met: bool | None  # None: not measured


@dataclass(frozen=True)
class DataFacts:
    """What the data actions did, as recorded: claims about customer data rest on these and nothing else."""

    snapshot_at: datetime | None = None  # the last snapshot that succeeded (not a dry run)
    snapshot_failed: bool = False  # a snapshot was attempted and none succeeded
    restored_at: datetime | None = None  # a restore from backup succeeded: data since the restore point lost
    restore_point: str | None = None

    @property
    def restored(self) -> bool:
        return self.restored_at is not None

    @property
    def preserved(self) -> bool:
        """Data were kept: a snapshot succeeded and no restore discarded anything."""
        return self.snapshot_at is not None and not self.restored


@dataclass
class History:
    incident: Incident
    runbook: Runbook
    procedure: Procedure
    problem_started_at: datetime  # the alert's start when it says, else the declaration
    declared_at: datetime
    first_ack_at: datetime | None
    decided_at: datetime | None
    restored_at: datetime | None  # service restored: the rollback completed
    resolved_at: datetime | None
    data: DataFacts
    timings: list[Timing]
    success: list[Metric]
    plan: Scorecard
    key_events: list[KeyEvent]
    executions: list[Execution]
    comms: list[CommsDraft]
    approvals: list[tuple[ApprovalRequest, list[Vote]]]
    pages: list[Page]
    events: list[TimelineEvent] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The incident in people's words: the trigger's title, never the raw alert name."""
        if self.incident.trigger_id:
            return self.runbook.trigger(self.incident.trigger_id).title
        return self.incident.title

    @property
    def impact(self) -> str:
        """What users cannot do, as the runbook words it for this trigger or scenario ('' when it does not)."""
        return self._impact("impact")

    @property
    def impact_past(self) -> str:
        return self._impact("impact_past")

    def _impact(self, key: str) -> str:
        rb, inc = self.runbook, self.incident
        for source in (rb.trigger(inc.trigger_id) if inc.trigger_id else None,
                       rb.scenario(inc.scenario_id) if inc.scenario_id else None):
            if source is not None and getattr(source, "impact", ""):
                return str(getattr(source, key))  # one source for both tenses, never a mix
        return ""

    @property
    def impact_ended_at(self) -> datetime | None:
        return self.restored_at or self.resolved_at

    def timing(self, label: str) -> Timing:
        return next(t for t in self.timings if t.label == label)

    def people(self) -> set[str]:
        """Every Slack user the history names, so a caller can resolve their names at once."""
        found = {e.actor for e in self.events if e.actor} | {p.user_id for p in self.pages}
        found |= {v.user_id for _, votes in self.approvals for v in votes}
        found |= {e.requested_by for e in self.executions}
        found |= {u for c in self.comms for u in (c.approved_by, c.sent_by, c.edited_by) if u}
        found |= {u for u in (self.incident.declared_by, self.incident.resolved_by) if u}
        return {u for u in found if not u.startswith(("alert:", "schedule:", "auto"))}


def minutes(a: datetime | None, b: datetime | None) -> float | None:
    return round((b - a).total_seconds() / 60, 1) if a and b else None


def _data_facts(runbook: Runbook, executions: list[Execution]) -> DataFacts:
    snapshot_at = restored_at = None
    restore_point = None
    snapshot_tried = False
    for e in executions:
        action = runbook.action(e.action_id)
        effect = action.data_effect or ("restore" if action.danger == "destructive" else None)
        real = e.state == "succeeded" and not e.dry_run
        if effect == "snapshot":
            snapshot_tried = snapshot_tried or (e.state in ("failed", "timed_out", "interrupted") and not e.dry_run)
            if real:
                snapshot_at = e.finished_at
        elif effect == "restore" and real:
            restored_at = e.finished_at
            restore_point = next((str(v) for k, v in e.params.items() if "restore" in k or "point" in k), None)
    return DataFacts(snapshot_at, snapshot_tried and snapshot_at is None, restored_at, restore_point)


def _problem_started(incident: Incident, alerts: list[ReceivedAlert]) -> datetime:
    starts: list[datetime] = []
    for alert in alerts:
        raw = alert.payload.get("starts_at")
        if raw:
            with contextlib.suppress(ValueError):
                at = datetime.fromisoformat(raw)
                starts.append(at if at.tzinfo else at.replace(tzinfo=UTC))
    earliest = min(starts, default=incident.declared_at)
    return min(earliest, incident.declared_at)


def _curate(procedure: Procedure, events: list[TimelineEvent], executions: list[Execution]) -> list[KeyEvent]:
    ticks: Counter[str] = Counter()
    for e in events:
        if e.kind == "item_ticked":
            ticks[str(e.data.get("step"))] += 1
        elif e.kind == "item_unticked":
            ticks[str(e.data.get("step"))] -= 1
    by_id = {x.id: x for x in executions}
    validated: dict[str, tuple[datetime, str | None]] = {}
    out: list[KeyEvent] = []
    for e in events:
        if e.kind in ("step_done", "step_skipped"):
            step_id = str(e.data.get("step"))
            count = ticks.get(step_id, 0)
            try:
                total = sum(len(t.items) for t in procedure.step(step_id).tasks)
            except KeyError:
                total = 0
            suffix = f" ({count} of {total} items ticked)" if total and e.kind == "step_done" else ""
            out.append(KeyEvent(e.at, e.kind, e.text + suffix, e.actor))
        elif e.kind in ("execution_started", "execution_finished"):
            execution = by_id.get(str(e.data.get("execution")))
            out.append(KeyEvent(e.at, e.kind, e.text, e.actor))
            if e.kind == "execution_finished" and execution is not None:
                for stage in execution.data.get("stages", []) or []:
                    verdict = stage.get("verdict") or "done"
                    out.append(KeyEvent(e.at, "traffic_stage", f"Traffic at {stage.get('percent')}%: {verdict}"
                                        + (f" ({stage['reason']})" if stage.get("reason") else ""), None))
        elif e.kind == "validated":
            validated[e.text.split(":", 1)[0]] = (e.at, e.actor)
        elif e.kind == "alert_received":
            out.append(KeyEvent(e.at, e.kind, "Alert received", None))
        elif e.kind in KEY_KINDS:
            out.append(KeyEvent(e.at, e.kind, e.text, e.actor))
    out += [KeyEvent(at, "validated", f"{title}: every check confirmed", actor)
            for title, (at, actor) in validated.items()]
    return sorted(out, key=lambda k: k.at)


def build(runbook: Runbook, incident: Incident, steps: list[StepState], executions: list[Execution],
          comms: list[CommsDraft], events: list[TimelineEvent], approvals: list[tuple[ApprovalRequest, list[Vote]]],
          pages: list[Page], alerts: list[ReceivedAlert], now: datetime, drill: Drill | None = None) -> History:
    procedure = procedure_for(runbook, incident.scenario_id)
    level = runbook.level(incident.level)
    started = _problem_started(incident, alerts)
    acks = [p.acked_at for p in pages if p.acked_at and p.tier != "management"]
    first_ack = min(acks, default=None)
    paged_roles = {p.role for p in pages if p.tier != "management"}
    response = [r.response_minutes for r in runbook.roles if r.id in paged_roles and r.response_minutes]
    rto = runbook.objectives.rto_minutes
    recovery = next((m.threshold for m in runbook.success_metrics if m.measure == "recovery_minutes"), None)
    timings = [
        Timing("Time to detect", "from the problem starting to the incident being declared",
               minutes(started, incident.declared_at), None),
        Timing("Time to acknowledge", "from the declaration to the first responder's acknowledgement",
               minutes(incident.declared_at, first_ack), min(response, default=None),
               f"{min(response):g} min (responders' response time)" if response else ""),
        Timing("Time to decide", "from the declaration to the rollback decision",
               minutes(incident.declared_at, incident.decided_at), level.decision_minutes,
               f"{level.decision_minutes:g} min ({level.title} level)"),
        Timing("Time to mitigate", "from the decision to the rollback completing (service restored)",
               minutes(incident.decided_at, incident.rollback_completed_at), rto,
               f"{rto:g} min (recovery time objective)"),
        Timing("Time to resolve", "from the declaration to the incident being resolved",
               minutes(incident.declared_at, incident.resolved_at), recovery,
               f"{recovery:g} min (full functionality restored)" if recovery is not None else ""),
    ]
    data = _data_facts(runbook, executions)
    history = History(
        incident=incident, runbook=runbook, procedure=procedure, problem_started_at=started,
        declared_at=incident.declared_at, first_ack_at=first_ack, decided_at=incident.decided_at,
        restored_at=incident.rollback_completed_at, resolved_at=incident.resolved_at, data=data,
        timings=timings, success=[],
        plan=score(incident, procedure, {s.step_id: s for s in steps}, drill, incident.resolved_at or now),
        key_events=_curate(procedure, events, executions), executions=executions, comms=comms,
        approvals=approvals, pages=pages, events=events)
    history.success = _success(history)
    return history


def _success(h: History) -> list[Metric]:
    rollback = h.timing("Time to mitigate").minutes
    recovery = h.timing("Time to resolve").minutes
    sent = sum(c.status == "sent" for c in h.comms)
    lost = "data restored from backup: changes since the restore point lost" if h.data.restored else (
        "no data restored" + (", snapshot taken first" if h.data.snapshot_at else ""))
    measured: dict[str, tuple[str, float | bool | None]] = {
        "rollback_minutes": (f"{rollback:g} min" if rollback is not None else "not completed", rollback),
        "data_loss": (lost, not h.data.restored),
        "users_affected_pct": ("not measured by Rollbot", None),
        "stakeholders_notified": (f"{sent} of {len(h.comms)} communications sent", bool(h.comms) and sent == len(h.comms)),
        "recovery_minutes": (f"{recovery:g} min" if recovery is not None else "still open", recovery),
    }
    out = []
    for metric in h.runbook.success_metrics:
        shown, value = measured[metric.measure]
        met: bool | None = value if isinstance(value, bool) or value is None else None
        if isinstance(value, float) and metric.op is not None and metric.threshold is not None:
            met = Condition(metric=metric.measure, op=metric.op, threshold=metric.threshold).holds(value)
        out.append(Metric(metric.label, metric.target, shown, met))
    return out


async def load(db: Database, runbook: Runbook, incident_id: str, now: datetime) -> History:
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise KeyError(f"no incident {incident_id}")
        steps = list((await session.exec(select(StepState).where(StepState.incident_id == incident_id))).all())
        executions = list((await session.exec(select(Execution).where(Execution.incident_id == incident_id)
                                               .order_by(col(Execution.requested_at)))).all())
        comms = list((await session.exec(select(CommsDraft).where(CommsDraft.incident_id == incident_id)
                                          .order_by(col(CommsDraft.drafted_at), col(CommsDraft.id)))).all())
        events = list((await session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
                                           .order_by(col(TimelineEvent.at), col(TimelineEvent.id)))).all())
        requests = list((await session.exec(select(ApprovalRequest).where(
            ApprovalRequest.incident_id == incident_id).order_by(col(ApprovalRequest.requested_at)))).all())
        votes = list((await session.exec(select(Vote).where(
            col(Vote.request_id).in_([r.id for r in requests])).order_by(col(Vote.at)))).all())
        pages = list((await session.exec(select(Page).where(Page.incident_id == incident_id)
                                          .order_by(col(Page.sent_at)))).all())
        alerts = list((await session.exec(select(ReceivedAlert).where(
            ReceivedAlert.incident_id == incident_id))).all())
    drill_id = incident.data.get("drill_id")
    drill = next((d for d in runbook.drills if d.id == drill_id), None) or (
        next((d for d in runbook.drills if d.kind == "full"), None) if incident.is_drill else None)
    return build(runbook, incident, steps, executions, comms, events,
                 [(r, [v for v in votes if v.request_id == r.id]) for r in requests], pages, alerts, now, drill)
