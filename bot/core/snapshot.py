"""Everything the views need about one incident, read in one go (views stay pure: state in, blocks out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from bot.core import done_before
from bot.runbook.model import Runbook, Step
from bot.runbook.procedure import Procedure, procedure_for
from bot.store.db import Database
from bot.store.models import (
    ApprovalRequest,
    ChecklistItemState,
    Execution,
    Incident,
    IncidentAlert,
    StepState,
    Vote,
)


@dataclass
class Snapshot:
    incident: Incident
    procedure: Procedure
    steps: dict[str, StepState]
    items: dict[tuple[str, str], ChecklistItemState]
    now: datetime
    holders: dict[str, list[str]] = field(default_factory=dict)
    decision_deadline: datetime | None = None  # the rollback vote's deadline (moves when the level changes)
    # The incident's alerts by fingerprint (their latest change's payload); resolved ones carry `resolved_at`.
    firing_alerts: list[dict[str, Any]] = field(default_factory=list)
    resolved_alerts: list[dict[str, Any]] = field(default_factory=list)
    approvals: tuple[tuple[str, datetime], ...] = ()  # (user, when) of each approve vote on the rollback
    measured: frozenset[str] = frozenset()  # metric gates a configured Prometheus answers (the rest: a person's call)
    # (step id, task id) -> what an earlier run already did (bot/core/done_before.py): no Run button for those
    done_before: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def runbook(self) -> Runbook:
        return self.procedure.runbook

    @property
    def elapsed_seconds(self) -> float:
        return (self.now - self.incident.declared_at).total_seconds()

    def due_at(self, step: Step) -> datetime:
        return self.incident.declared_at + timedelta(minutes=step.window.end)

    def is_overdue(self, step: Step) -> bool:
        state = self.steps.get(step.id)
        return state is not None and state.status == "active" and self.now > self.due_at(step)

    def overdue_steps(self) -> list[Step]:
        return [s for s in self.procedure.steps() if self.is_overdue(s)]

    def checked(self, step_id: str, item: str) -> bool:
        state = self.items.get((step_id, item))
        return bool(state and state.checked)

    def current_step(self) -> Step | None:
        """The first open step of the current phase: what the war room works on now."""
        if not self.incident.phase_id:
            return None
        for step in self.procedure.phase(self.incident.phase_id).steps:
            state = self.steps.get(step.id)
            if state is None or state.status in ("pending", "active"):
                return step
        return None

    def done_count(self) -> tuple[int, int]:
        steps = self.procedure.steps()
        done = sum(1 for s in steps if self.steps.get(s.id) and self.steps[s.id].status in ("done", "skipped"))
        return done, len(steps)


async def load_snapshot(db: Database, runbook: Runbook, incident_id: str, now: datetime) -> Snapshot:
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise KeyError(f"no incident {incident_id}")
        steps = (await session.exec(select(StepState).where(StepState.incident_id == incident_id))).all()
        items = (await session.exec(
            select(ChecklistItemState).where(ChecklistItemState.incident_id == incident_id)
        )).all()
        request = (await session.exec(select(ApprovalRequest).where(
            ApprovalRequest.incident_id == incident_id, ApprovalRequest.subject == "rollback"))).first()
        deadline = request.deadline_at if request else None
        approvals = (await session.exec(select(Vote).where(Vote.request_id == request.id, Vote.vote == "approve")
                                        .order_by(col(Vote.at)))).all() if request else []
        procedure = procedure_for(runbook, incident.scenario_id)
        staged = {t.action for st in procedure.steps() for t in st.tasks
                  if t.action and runbook.action(t.action).stages}
        runs = (await session.exec(select(Execution).where(
            Execution.incident_id == incident_id, col(Execution.action_id).in_(staged)))).all() if staged else []
        alerts = (await session.exec(select(IncidentAlert).where(IncidentAlert.incident_id == incident_id)
                                     .order_by(col(IncidentAlert.first_seen_at), col(IncidentAlert.id)))).all()
    return Snapshot(
        incident=incident,
        procedure=procedure,
        steps={s.step_id: s for s in steps},
        items={(i.step_id, i.item_id): i for i in items},
        now=now,
        decision_deadline=deadline,
        firing_alerts=[a.payload for a in alerts if a.status == "firing"],
        resolved_alerts=[{**a.payload, "resolved_at": a.changed_at.isoformat()} for a in alerts if a.status == "resolved"],
        approvals=tuple((v.user_id, v.at) for v in approvals),
        done_before={key: done_before.done_line(runbook.action(row.action_id), row, done_before.where(procedure, row))
                     for key, row in done_before.done_tasks(procedure, runs).items()},
    )
