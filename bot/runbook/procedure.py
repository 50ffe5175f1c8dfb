"""The procedure an incident actually runs: the runbook's phases, with the scenario's own steps in place of
the phase the runbook marks `replaced_by_scenario`."""

from __future__ import annotations

from dataclasses import dataclass

from bot.runbook.model import Phase, Runbook, Scenario, Step, Task, Window, item_id


@dataclass(frozen=True)
class Procedure:
    runbook: Runbook
    scenario: Scenario | None
    phases: tuple[Phase, ...]

    def step(self, step_id: str) -> Step:
        for phase in self.phases:
            for step in phase.steps:
                if step.id == step_id:
                    return step
        raise KeyError(f"no step {step_id!r} in this incident's procedure")

    def phase_of(self, step_id: str) -> Phase:
        for phase in self.phases:
            if any(s.id == step_id for s in phase.steps):
                return phase
        raise KeyError(f"no step {step_id!r} in this incident's procedure")

    def phase(self, phase_id: str) -> Phase:
        for phase in self.phases:
            if phase.id == phase_id:
                return phase
        raise KeyError(f"no phase {phase_id!r}")

    def next_phase(self, phase_id: str) -> Phase | None:
        ids = [p.id for p in self.phases]
        index = ids.index(phase_id)
        return self.phases[index + 1] if index + 1 < len(ids) else None

    def steps(self) -> list[Step]:
        return [s for p in self.phases for s in p.steps]

    def decision_step(self) -> Step | None:
        return next((s for s in self.steps() if s.kind == "decision"), None)


def items_of(step: Step) -> list[tuple[str, str]]:
    """(item id, text) for every checklist item of a step, in order."""
    return [(item_id(task.id, i), text) for task in step.tasks for i, text in enumerate(task.items)]


def task_of(step: Step, item: str) -> Task | None:
    task_id = item.rsplit(".", 1)[0]
    return next((t for t in step.tasks if t.id == task_id), None)


def scenario_phase(phase: Phase, scenario: Scenario) -> Phase:
    """Scenario steps run back to back from the phase's start, each as a one-task step."""
    steps: list[Step] = []
    start = phase.window.start
    for number, s in enumerate(scenario.steps, start=1):
        end = start + s.minutes
        task = Task(id=s.id, title=s.title, minutes=s.minutes, action=s.action, start_when=s.start_when,
                    items=s.items or [s.title])
        steps.append(Step(
            id=f"s{scenario.number}_{s.id}"[:63],
            number=round(phase.steps[0].number + number / 10, 1) if len(scenario.steps) < 10 else number,
            title=s.title,
            owner=s.owner or scenario.owner,
            window=Window(start=start, end=end),
            summary=f"Scenario {scenario.number}: {scenario.title}",
            tasks=[task],
        ))
        start = end
    end = max(phase.window.end, start)
    return phase.model_copy(update={"steps": steps, "window": Window(start=phase.window.start, end=end)})


_cache: dict[tuple[int, str | None], Procedure] = {}


def procedure_for(runbook: Runbook, scenario_id: str | None) -> Procedure:
    """Built once per (runbook, scenario); runbooks are immutable so the result never goes stale."""
    key = (id(runbook), scenario_id)
    if key in _cache and _cache[key].runbook is runbook:
        return _cache[key]
    scenario = runbook.scenario(scenario_id) if scenario_id else None
    phases = tuple(
        scenario_phase(p, scenario) if (scenario and p.replaced_by_scenario) else p for p in runbook.phases
    )
    _cache[key] = Procedure(runbook=runbook, scenario=scenario, phases=phases)
    return _cache[key]
