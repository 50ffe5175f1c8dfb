"""The runbook schema: a procedure as validated data. The engine serves any runbook of this shape.

Every model forbids unknown keys; cross-references (owners, actions, scenarios, roles in policies) are
checked once the whole document is parsed, so an error names the path inside the file.

The top-level `Runbook` lives here; its sections live in their own modules (roles, triggers, actions, phases,
escalation, comms, review, drills) and are re-exported, so `from bot.runbook.model import X` keeps working.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import Field

from bot.runbook._schema import Id, Strict
from bot.runbook.actions import Action, Confirmation, Danger, Param, ParamType
from bot.runbook.comms import Audience, CommsSettings, CommsTemplate, Moment
from bot.runbook.drills import Drill
from bot.runbook.escalation import Escalation, ExternalContact, Rung
from bot.runbook.phases import (
    Gate,
    LabelledItem,
    Phase,
    Scenario,
    ScenarioStep,
    StartWhen,
    Step,
    Task,
    ValidationChecklist,
    Window,
    item_id,
)
from bot.runbook.review import FollowUp, ItemGroup, SuccessMetric
from bot.runbook.roles import Level, Policy, Role
from bot.runbook.triggers import Comparison, Condition, Trigger, TriggerMatch

__all__ = ["Action", "Audience", "CommsSettings", "CommsTemplate", "Comparison", "Condition", "Confirmation", "Danger",
           "Document", "Drill", "Escalation", "ExternalContact", "FollowUp", "Gate", "Id", "ItemGroup", "LabelledItem",
           "Level", "Moment", "Objectives", "Param", "ParamType", "Phase", "Policy", "Role", "Runbook", "Rung",
           "Scenario", "ScenarioStep", "StartWhen", "Step", "Strict", "SuccessMetric", "Task", "Trigger", "TriggerMatch",
           "ValidationChecklist", "Window", "item_id"]

T = TypeVar("T")


class Objectives(Strict):
    rto_minutes: float = Field(gt=0)
    rpo_minutes: float = Field(ge=0)
    target_minutes: Window
    statement: str


class Document(Strict):
    version: str
    owner: Id
    next_review: str
    last_updated: str = ""
    hotline: str = ""


class Runbook(Strict):
    name: Id
    title: str
    overview: str
    objectives: Objectives
    roles: list[Role] = Field(min_length=1)
    incident_lead_roles: list[Id] = Field(min_length=1)
    levels: list[Level] = Field(min_length=1)
    triggers: list[Trigger] = Field(min_length=1)
    phases: list[Phase] = Field(min_length=1)
    actions: list[Action] = []
    scenarios: list[Scenario] = []
    validation: list[ValidationChecklist] = []
    escalation: Escalation
    comms: CommsSettings = CommsSettings()
    communications: list[CommsTemplate] = []
    follow_ups: list[FollowUp] = []
    drills: list[Drill] = []
    success_metrics: list[SuccessMetric] = []
    key_success_factors: list[LabelledItem] = []
    critical_points: list[LabelledItem] = []
    document: Document
    scripts_dir: str = "."  # where `script` paths are resolved, relative to the runbook file

    # --- lookups -------------------------------------------------------------------------------

    def role(self, role_id: str) -> Role:
        return _by_id(self.roles, role_id, "role")

    def level(self, level_id: str) -> Level:
        return _by_id(self.levels, level_id, "level")

    def trigger(self, trigger_id: str) -> Trigger:
        return _by_id(self.triggers, trigger_id, "trigger")

    def action(self, action_id: str) -> Action:
        return _by_id(self.actions, action_id, "action")

    def scenario(self, scenario_id: str) -> Scenario:
        return _by_id(self.scenarios, scenario_id, "scenario")

    def phase(self, phase_id: str) -> Phase:
        return _by_id(self.phases, phase_id, "phase")

    def step(self, step_id: str) -> Step:
        for phase in self.phases:
            for step in phase.steps:
                if step.id == step_id:
                    return step
        raise KeyError(f"no step {step_id!r}")

    def phase_of(self, step_id: str) -> Phase:
        for phase in self.phases:
            if any(s.id == step_id for s in phase.steps):
                return phase
        raise KeyError(f"no step {step_id!r}")

    def all_steps(self) -> list[Step]:
        return [s for p in self.phases for s in p.steps]


def _by_id(items: list[T], wanted: str, what: str) -> T:
    for item in items:
        if getattr(item, "id", None) == wanted:
            return item
    raise KeyError(f"no {what} {wanted!r}")
