"""Whole-document checks pydantic cannot make field by field: unique ids, references between sections,
windows and numbering, parameters, scripts on disk and communication templates.

Each problem is (location inside the file, message); the loader formats them with the file name and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError

from bot.runbook.model import Action, Param, ParamType, Policy, Runbook, StartWhen
from bot.runbook.templating import compile_template, sample_context

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]


def check_runbook(runbook: Runbook, path: Path) -> list[Problem]:
    checker = _Checker(runbook, path)
    checker.run()
    return checker.problems


class _Checker:
    def __init__(self, runbook: Runbook, path: Path) -> None:
        self.rb = runbook
        self.path = path
        self.problems: list[Problem] = []
        self.roles = {r.id for r in runbook.roles}
        self.levels = {lv.id for lv in runbook.levels}
        self.triggers = {t.id for t in runbook.triggers}
        self.scenarios = {s.id for s in runbook.scenarios}
        self.actions = {a.id: a for a in runbook.actions}

    def add(self, loc: Loc, message: str) -> None:
        self.problems.append((loc, message))

    def run(self) -> None:
        self.unique_ids()
        self.roles_and_levels()
        self.triggers_()
        self.phases()
        self.actions_()
        self.scenarios_()
        self.escalation()
        self.communications()
        self.others()

    # --- helpers ----------------------------------------------------------------------------------

    def unique(self, items: Iterable[Any], loc: Loc, what: str, key: str = "id") -> None:
        seen: dict[Any, int] = {}
        for i, item in enumerate(items):
            value = getattr(item, key)
            if value in seen:
                self.add((*loc, i, key), f"duplicate {what} {key} {value!r} (first at {loc[-1]}[{seen[value]}])")
            else:
                seen[value] = i

    def role(self, loc: Loc, role_id: str | None) -> None:
        if role_id is not None and role_id not in self.roles:
            self.add(loc, f"names undefined role {role_id!r} (roles: {', '.join(sorted(self.roles))})")

    def policy(self, loc: Loc, policy: Policy | None) -> None:
        if policy is None:
            return
        key = "any_of" if policy.any_of else "all_of"
        for i, role_id in enumerate(policy.roles):
            self.role((*loc, key, i), role_id)
        if len(set(policy.roles)) != len(policy.roles):
            self.add((*loc, key), "names a role twice")

    def action(self, loc: Loc, action_id: str | None) -> None:
        if action_id is not None and action_id not in self.actions:
            self.add(loc, f"names undefined action {action_id!r}")

    def prometheus_action(self, loc: Loc, action_id: str) -> None:
        target = self.actions.get(action_id)
        if target is None:
            self.add(loc, f"names undefined action {action_id!r}")
        elif target.kind != "prometheus":
            self.add(loc, f"names action {action_id!r} of kind {target.kind}, not prometheus")

    # --- sections ---------------------------------------------------------------------------------

    def unique_ids(self) -> None:
        rb = self.rb
        for name in ("roles", "levels", "triggers", "phases", "actions", "scenarios", "validation",
                     "communications", "follow_ups", "drills", "success_metrics"):
            self.unique(getattr(rb, name), (name,), name.rstrip("s").replace("_", "-"))
        seen_steps: dict[str, Loc] = {}
        for p, phase in enumerate(rb.phases):
            for s, step in enumerate(phase.steps):
                loc = ("phases", p, "steps", s)
                if step.id in seen_steps:
                    self.add((*loc, "id"), f"duplicate step id {step.id!r} (first at {_path(seen_steps[step.id])})")
                seen_steps.setdefault(step.id, loc)
                self.unique(step.tasks, (*loc, "tasks"), "task")
        # The engine names scenario steps s<number>_<id>; they must not collide with the runbook's steps.
        for c, scenario in enumerate(rb.scenarios):
            self.unique(scenario.steps, ("scenarios", c, "steps"), "scenario step")
            for s, scenario_step in enumerate(scenario.steps):
                derived = f"s{scenario.number}_{scenario_step.id}"[:63]
                if derived in seen_steps:
                    self.add(("scenarios", c, "steps", s, "id"), f"becomes step id {derived!r}, already a step")
        self.unique(rb.scenarios, ("scenarios",), "scenario", key="number")
        for a, action in enumerate(rb.actions):
            self.unique(action.params, ("actions", a, "params"), "parameter", key="name")

    def roles_and_levels(self) -> None:
        for i, role_id in enumerate(self.rb.incident_lead_roles):
            self.role(("incident_lead_roles", i), role_id)
        for i, checklist in enumerate(self.rb.validation):
            self.role(("validation", i, "owner"), checklist.owner)
            for j, item in enumerate(checklist.items):
                for k, action_id in enumerate(item.proven_by):
                    self.action(("validation", i, "items", j, "proven_by", k), action_id)
        for i, level in enumerate(self.rb.levels):
            self.policy(("levels", i, "approval"), level.approval)
            for j, role_id in enumerate(level.page_roles):
                self.role(("levels", i, "page_roles", j), role_id)

    def triggers_(self) -> None:
        # Alert names match case-insensitively; one name under two triggers would make the mapping a coin toss.
        claimed: dict[str, str] = {}
        for i, trigger in enumerate(self.rb.triggers):
            for j, name in enumerate(trigger.match.alertnames):
                owner = claimed.setdefault(name.lower(), trigger.id)
                if owner != trigger.id:
                    self.add(("triggers", i, "match", "alertnames", j), f"alert {name!r} already maps to {owner!r}")
        for i, trigger in enumerate(self.rb.triggers):
            if trigger.level not in self.levels:
                self.add(("triggers", i, "level"), f"names undefined level {trigger.level!r}")
            if trigger.scenario is not None and trigger.scenario not in self.scenarios:
                self.add(("triggers", i, "scenario"), f"names undefined scenario {trigger.scenario!r}")

    def phases(self) -> None:
        rb = self.rb
        last_phase = last_step = None
        decisions: list[Loc] = []
        for p, phase in enumerate(rb.phases):
            if last_phase is not None and phase.number <= last_phase:
                self.add(("phases", p, "number"), f"phase numbers must increase ({phase.number} after {last_phase})")
            last_phase = phase.number
            for s, step in enumerate(phase.steps):
                loc: Loc = ("phases", p, "steps", s)
                if last_step is not None and step.number <= last_step:
                    self.add((*loc, "number"), f"step numbers must increase ({step.number} after {last_step})")
                last_step = step.number
                self.role((*loc, "owner"), step.owner)
                w, pw = step.window, phase.window
                if w.start < pw.start or w.end > pw.end:
                    self.add((*loc, "window"), f"window {w.start:g}-{w.end:g} min lies outside its phase's window "
                             f"{pw.start:g}-{pw.end:g} min")
                if step.kind == "decision":
                    decisions.append(loc)
                    if phase.replaced_by_scenario:
                        self.add((*loc, "kind"), "the decision step cannot sit in a phase a scenario replaces")
                for t, task in enumerate(step.tasks):
                    self.action((*loc, "tasks", t, "action"), task.action)
                    if task.auto and not task.action:
                        self.add((*loc, "tasks", t, "auto"), "auto runs the task's action, but it names none")
                    self.start_when((*loc, "tasks", t), task.start_when, task.action)
                    if task.start_when is not None and task.auto:
                        self.add((*loc, "tasks", t, "start_when"), "say auto or start_when, not both")
                    for g, gate in enumerate(task.gates):
                        self.prometheus_action((*loc, "tasks", t, "gates", g, "action"), gate.action)
                        self.action((*loc, "tasks", t, "gates", g, "start_when", "succeeded"),
                                    gate.start_when.succeeded if gate.start_when else None)
                # A run is addressed by (step, action): one action runs once per step.
                named = [a for task in step.tasks for a in [task.action, *(g.action for g in task.gates)] if a]
                for twice in sorted({a for a in named if named.count(a) > 1}):
                    self.add((*loc, "tasks"), f"action {twice!r} is named twice in this step (as a task's "
                             "action or gate): a step runs each action once")
        if len(decisions) != 1:
            where = ", ".join(_path(d) for d in decisions) or "none"
            self.add(("phases",), f"exactly one step must have kind: decision (found {len(decisions)}: {where})")
        replaced = [p for p, phase in enumerate(rb.phases) if phase.replaced_by_scenario]
        if rb.scenarios and len(replaced) != 1:
            self.add(("phases",), f"with scenarios, exactly one phase has replaced_by_scenario: true "
                     f"(found {len(replaced)})")
        if not rb.scenarios and replaced:
            self.add(("phases", replaced[0], "replaced_by_scenario"), "no scenarios are defined to replace it")

    def actions_(self) -> None:
        scripts_dir = (self.path.parent / self.rb.scripts_dir).resolve()
        for a, action in enumerate(self.rb.actions):
            loc: Loc = ("actions", a)
            self.policy((*loc, "approval"), action.approval)
            for r, required in enumerate(action.requires):
                self.action((*loc, "requires", r), required)
                if required == action.id:
                    self.add((*loc, "requires", r), "an action cannot wait for itself")
            for p, param in enumerate(action.params):
                self.param((*loc, "params", p), param)
            if action.confirmation:
                names = {p.name for p in action.params}
                for field in re.findall(r"\{(\w+)\}", action.confirmation.phrase):
                    if field not in names:
                        self.add((*loc, "confirmation", "phrase"), f"{{{field}}} names no parameter of this action")
            if action.check is not None:
                target = self.actions.get(action.check)
                if target is None:
                    self.add((*loc, "check"), f"names undefined action {action.check!r}")
                elif target.kind not in ("check", "prometheus"):
                    self.add((*loc, "check"), f"names action {action.check!r} of kind {target.kind}, not a check")
            for g, gate in enumerate(action.stage_gates):
                self.prometheus_action((*loc, "stage_gates", g), gate)
            self.stages(loc, action)
            if action.kind == "shell" and action.script:
                self.script((*loc, "script"), action.script, scripts_dir)

    def param(self, loc: Loc, param: Param) -> None:
        regex = None
        if param.pattern is not None:
            try:
                regex = re.compile(param.pattern)
            except re.error as exc:
                self.add((*loc, "pattern"), f"invalid regular expression: {exc}")
        if param.type == ParamType.choice and not param.choices:
            self.add((*loc, "choices"), "a choice parameter needs choices")
        if param.default is not None:
            if regex and not regex.fullmatch(param.default):
                self.add((*loc, "default"), f"default {param.default!r} does not match the pattern")
            if param.choices and param.default not in param.choices:
                self.add((*loc, "default"), f"default {param.default!r} is not one of the choices")
        if param.default_now is not None:
            sample = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC).strftime(param.default_now)
            if "%" in sample or sample == param.default_now:
                self.add((*loc, "default_now"), f"{param.default_now!r} is not a strftime format")
            elif regex and not regex.fullmatch(sample):
                self.add((*loc, "default_now"), f"its value {sample!r} does not match the pattern")
        if sum(x is not None for x in (param.default, param.default_from_file, param.default_now)) > 1:
            self.add(loc, "give at most one of default / default_from_file / default_now")

    def stages(self, loc: Loc, action: Action) -> None:
        if not action.stages:
            if action.stage_param:
                self.add((*loc, "stage_param"), "stage_param without stages")
            return
        if not action.stage_param:
            self.add((*loc, "stages"), "stages need a stage_param to fill")
        if any(b <= a for a, b in zip(action.stages, action.stages[1:], strict=False)):
            self.add((*loc, "stages"), "stages must increase")
        if not all(0 < s <= 100 for s in action.stages):
            self.add((*loc, "stages"), "stages are percentages between 1 and 100")

    def script(self, loc: Loc, script: str, scripts_dir: Path) -> None:
        relative = Path(script)
        if relative.is_absolute() or ".." in relative.parts:
            self.add(loc, f"must be a path inside scripts_dir, got {script!r}")
            return
        full = scripts_dir / relative
        if not full.is_file():
            self.add(loc, f"script not found: {full}")

    def start_when(self, loc: Loc, when: StartWhen | None, action: str | None) -> None:
        """A task's or a scenario step's `start_when`: it starts the action named beside it, after a known one."""
        if when is None:
            return
        if not action:
            self.add((*loc, "start_when"), "start_when starts the action named beside it, but there is none")
        self.action((*loc, "start_when", "succeeded"), when.succeeded)

    def scenarios_(self) -> None:
        for c, scenario in enumerate(self.rb.scenarios):
            loc: Loc = ("scenarios", c)
            self.role((*loc, "owner"), scenario.owner)
            self.action((*loc, "procedure"), scenario.procedure)
            for t, trigger_id in enumerate(scenario.triggers):
                if trigger_id not in self.triggers:
                    self.add((*loc, "triggers", t), f"names undefined trigger {trigger_id!r}")
            for s, step in enumerate(scenario.steps):
                self.role((*loc, "steps", s, "owner"), step.owner)
                self.action((*loc, "steps", s, "action"), step.action)
                self.start_when((*loc, "steps", s), step.start_when, step.action)

    def escalation(self) -> None:
        for i, rung in enumerate(self.rb.escalation.management):
            self.role(("escalation", "management", i, "role"), rung.role)

    def communications(self) -> None:
        context = sample_context()
        for i, template in enumerate(self.rb.communications):
            self.role(("communications", i, "approver"), template.approver)
            for key in ("subject", "body"):
                source = getattr(template, key)
                try:
                    compile_template(source).render(**context)
                except TemplateSyntaxError as exc:
                    self.add(("communications", i, key), f"template syntax error at template line {exc.lineno}: "
                             f"{exc.message}")
                except TemplateError as exc:
                    self.add(("communications", i, key), f"template does not render with the sample context: "
                             f"{type(exc).__name__}: {exc}")

    def others(self) -> None:
        self.role(("document", "owner"), self.rb.document.owner)
        for i, follow_up in enumerate(self.rb.follow_ups):
            self.role(("follow_ups", i, "owner"), follow_up.owner)
        for i, drill in enumerate(self.rb.drills):
            for j, role_id in enumerate(drill.participants):
                self.role(("drills", i, "participants", j), role_id)
            if drill.scenario is not None and drill.scenario not in self.scenarios:
                self.add(("drills", i, "scenario"), f"names undefined scenario {drill.scenario!r}")


def format_path(loc: Iterable[str | int]) -> str:
    """`phases[2].steps[0].owner` from pydantic-style locations."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


_path = format_path
