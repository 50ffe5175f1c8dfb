"""A drill's scorecard: each phase and step against its window, the decision against its deadline, what was
skipped or late, and the drill's objectives. Pure: state in, scorecard out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.runbook.model import Drill
from bot.runbook.procedure import Procedure
from bot.store.models import Incident, StepState


@dataclass(frozen=True)
class StepScore:
    number: int
    title: str
    window_end_min: float
    done_at_min: float | None
    status: str  # on_time | late | skipped | not_done

    @property
    def late_min(self) -> float:
        return max(0.0, (self.done_at_min or 0) - self.window_end_min) if self.status == "late" else 0.0


@dataclass(frozen=True)
class PhaseScore:
    number: int
    title: str
    window_end_min: float
    done_at_min: float | None
    on_time: bool


@dataclass(frozen=True)
class Scorecard:
    drill_title: str
    steps: list[StepScore]
    phases: list[PhaseScore]
    decision_min: float | None
    decision_deadline_min: float
    total_min: float | None
    rto_min: float
    objectives: list[str] = field(default_factory=list)

    @property
    def late(self) -> list[StepScore]:
        return [s for s in self.steps if s.status == "late"]

    @property
    def skipped(self) -> list[StepScore]:
        return [s for s in self.steps if s.status in ("skipped", "not_done")]

    @property
    def decision_on_time(self) -> bool:
        return self.decision_min is not None and self.decision_min <= self.decision_deadline_min

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"late": [s.number for s in self.late], "skipped": [s.number for s in self.skipped],
                               "decision_on_time": self.decision_on_time}


def _minutes(incident: Incident, when: datetime | None) -> float | None:
    return None if when is None else round((when - incident.declared_at).total_seconds() / 60, 2)


def score(incident: Incident, procedure: Procedure, states: dict[str, StepState], drill: Drill | None,
          ended_at: datetime) -> Scorecard:
    runbook = procedure.runbook
    steps: list[StepScore] = []
    phases: list[PhaseScore] = []
    for phase in procedure.phases:
        finished: list[float] = []
        for step in phase.steps:
            state = states.get(step.id)
            done = _minutes(incident, state.completed_at) if state else None
            if state is None or state.status in ("pending", "active"):
                status = "not_done"
            elif state.status == "skipped":
                status = "skipped"
            else:
                status = "on_time" if done is not None and done <= step.window.end else "late"
            if done is not None:
                finished.append(done)
            steps.append(StepScore(step.number, step.title, step.window.end, done, status))
        complete = len(finished) == len(phase.steps)
        phase_done = max(finished) if complete else None
        phases.append(PhaseScore(phase.number, phase.title, phase.window.end, phase_done,
                                 phase_done is not None and phase_done <= phase.window.end))
    return Scorecard(
        drill_title=drill.title if drill else "Rollback drill",
        steps=steps, phases=phases,
        decision_min=_minutes(incident, incident.decided_at),
        decision_deadline_min=runbook.level(incident.level).decision_minutes,
        total_min=_minutes(incident, ended_at),
        rto_min=runbook.objectives.rto_minutes,
        objectives=list(drill.items) if drill else [],
    )
