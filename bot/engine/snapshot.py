"""Everything the views need about one incident, read in one go (views stay pure: state in, blocks out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import select

from bot.engine.procedure import Procedure, procedure_for
from bot.runbook.model import Runbook, Step
from bot.store.db import Database
from bot.store.models import ApprovalRequest, ChecklistItemState, Incident, StepState


@dataclass
class Snapshot:
    incident: Incident
    procedure: Procedure
    steps: dict[str, StepState]
    items: dict[tuple[str, str], ChecklistItemState]
    now: datetime
    holders: dict[str, list[str]] = field(default_factory=dict)
    decision_deadline: datetime | None = None  # the rollback vote's deadline (moves when the level changes)

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
        deadline = (await session.exec(select(ApprovalRequest.deadline_at).where(
            ApprovalRequest.incident_id == incident_id, ApprovalRequest.subject == "rollback"))).first()
    return Snapshot(
        incident=incident,
        procedure=procedure_for(runbook, incident.scenario_id),
        steps={s.step_id: s for s in steps},
        items={(i.step_id, i.item_id): i for i in items},
        now=now,
        decision_deadline=deadline,
    )
