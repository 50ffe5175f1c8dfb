"""The procedure's shape: phases of steps of tasks (with their windows and metric gates), the scenarios that
bring their own steps, and the validation checklists."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from bot.runbook._schema import Id, Strict


class Window(Strict):
    """Minutes after the incident opens: a step planned for 5-7 minutes has start=5, end=7."""

    start: float = Field(ge=0)
    end: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end <= self.start:
            raise ValueError(f"window ends ({self.end}) at or before it starts ({self.start})")
        return self


class StartWhen(Strict):
    """When a task's action starts by itself: as soon as its gate opens, not when someone clicks Run."""

    decision: Literal["approved"] | None = None  # the rollback decision is approved
    succeeded: Id | None = None  # this earlier action succeeded in the incident

    @model_validator(mode="after")
    def _one(self) -> StartWhen:
        if (self.decision is None) == (self.succeeded is None):
            raise ValueError("say exactly one of `decision: approved` or `succeeded: <action>`")
        return self


class Gate(Strict):
    """A checklist item a `prometheus` action measures. With a Prometheus configured the action runs by itself
    (when the step's phase starts, or at `start_when`) and its pass ticks the item; a failure or no data leaves the
    item to a person, saying why. Without a Prometheus the step says the item is a person's call."""

    item: str  # the item's text, exactly as in the task's `items`
    action: Id
    start_when: StartWhen | None = None


class Task(Strict):
    """A numbered block inside a step (e.g. "Incident Confirmation (30 seconds)") with its checklist items."""

    id: Id
    title: str
    minutes: float | None = Field(default=None, gt=0)
    note: str = ""
    action: Id | None = None
    auto: bool = False  # run the action as soon as the step starts
    start_when: StartWhen | None = None  # or as soon as its gate opens, before the step starts
    optional: bool = False  # e.g. the database rollback, only if corruption is confirmed
    # The bot's own work proves these items: `war_room_ready` (the channel open, the responders invited and
    # paged, the incident clock running) ticks them by itself when the war room is ready.
    ticked_by: Literal["war_room_ready"] | None = None
    items: list[str] = Field(min_length=1)
    gates: list[Gate] = []  # items measured from metrics (Step 7's performance validation)

    @model_validator(mode="after")
    def _gated_items(self) -> Task:
        for gate in self.gates:
            if gate.item not in self.items:
                raise ValueError(f"gate item {gate.item!r} is not one of this task's items")
            if gate.action == self.action:
                raise ValueError(f"gate action {gate.action!r} is already the task's own action")
        actions = [g.action for g in self.gates]
        if len(set(actions)) != len(actions):
            raise ValueError("each gate of a task names a different action")
        return self

    def gate_for(self, action_id: str) -> Gate | None:
        return next((g for g in self.gates if g.action == action_id), None)


class Step(Strict):
    id: Id
    number: int | float  # a scenario's steps are numbered within the phase they replace: 5.1, 5.2 …
    title: str
    owner: Id
    window: Window
    kind: Literal["checklist", "decision"] = "checklist"
    summary: str = ""
    tasks: list[Task] = Field(min_length=1)


class Phase(Strict):
    id: Id
    number: int
    title: str
    window: Window
    steps: list[Step] = Field(min_length=1)
    replaced_by_scenario: bool = False  # a scenario swaps in its own steps for this phase


class ScenarioStep(Strict):
    id: Id
    title: str
    minutes: float = Field(gt=0)
    owner: Id | None = None
    action: Id | None = None
    start_when: StartWhen | None = None  # the action starts by itself when this gate opens (as a task's does)
    items: list[str] = []


class Scenario(Strict):
    id: Id
    number: int
    title: str
    trigger: str
    triggers: list[Id] = []
    execution_minutes: float = Field(gt=0)
    procedure: Id | None = None  # the scenario's whole-procedure script
    owner: Id
    steps: list[ScenarioStep] = Field(min_length=1)
    impact: str = ""  # what users cannot do, when the trigger does not say
    impact_past: str = ""

    @model_validator(mode="after")
    def _fits(self) -> Scenario:
        total = sum(s.minutes for s in self.steps)
        if total > self.execution_minutes + 1e-9:
            raise ValueError(f"its steps take {total:g} min, over its execution time {self.execution_minutes:g}")
        return self


class LabelledItem(Strict):
    label: str
    text: str
    # Actions whose success after the rollback started proves this item: it ticks itself (by the bot, saying
    # which run proved it) when the checklist is posted. A person can still untick it.
    proven_by: list[Id] = []


class ValidationChecklist(Strict):
    id: Id
    title: str
    owner: Id | None = None  # who ticks it, with the incident leads (bot/core/authz.py)
    items: list[LabelledItem] = Field(min_length=1)


def item_id(task_id: str, index: int) -> str:
    """Checklist items are addressed as `task_id.N` (N from 1); the id goes into Slack option values."""
    return f"{task_id}.{index + 1}"
