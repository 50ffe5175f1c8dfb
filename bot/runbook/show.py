"""The runbook as text for a terminal: what `rollbot runbook show` prints."""

from __future__ import annotations

import shlex
import textwrap

from bot.runbook.model import Action, Policy, Runbook, StartWhen, Window


def render_runbook(rb: Runbook) -> str:
    out = _Out()
    _header(out, rb)
    _matrix(out, rb)
    _triggers(out, rb)
    _procedure(out, rb)
    _actions(out, rb)
    _scenarios(out, rb)
    _validation(out, rb)
    _escalation(out, rb)
    _communications(out, rb)
    _follow_ups(out, rb)
    _drills(out, rb)
    _summary(out, rb)
    return out.text()


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str = "", indent: int = 0) -> None:
        self.lines.append(" " * indent + text if text else "")

    def wrap(self, text: str, indent: int = 0, width: int = 100) -> None:
        for line in textwrap.wrap(text, width=width - indent) or [""]:
            self(line, indent)

    def section(self, title: str) -> None:
        self()
        self(title.upper())
        self("=" * len(title))

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _win(window: Window) -> str:
    return f"{window.start:g}-{window.end:g} min"


def _policy(rb: Runbook, policy: Policy) -> str:
    titles = [rb.role(r).title for r in policy.roles]
    return (" OR " if policy.any_of else " + ").join(titles)


def _header(out: _Out, rb: Runbook) -> None:
    doc = rb.document
    out(rb.title)
    out("#" * len(rb.title))
    out(f"runbook {rb.name} · document version {doc.version} · owner {rb.role(doc.owner).title} · "
        f"next review {doc.next_review}" + (f" · hotline {doc.hotline}" if doc.hotline else ""))
    out()
    out.wrap(rb.overview)
    out.section("Objectives")
    obj = rb.objectives
    out.wrap(obj.statement, 2)
    out(f"RTO {obj.rto_minutes:g} min · RPO {obj.rpo_minutes:g} min · target {_win(obj.target_minutes)}", 2)


def _matrix(out: _Out, rb: Runbook) -> None:
    out.section("Rollback authorization matrix")
    out(f"{'Level':<15}{'Authority required':<40}{'Decision time':<15}Also paged", 2)
    for level in rb.levels:
        paged = ", ".join(rb.role(r).title for r in level.page_roles) or "-"
        deadline = f"{level.decision_minutes:g} min"
        out(f"{level.title:<15}{_policy(rb, level.approval):<40}{deadline:<15}{paged}", 2)


def _triggers(out: _Out, rb: Runbook) -> None:
    out.section("Rollback triggers")
    for level in rb.levels:
        out(f"{level.description}", 2)
        for t in (t for t in rb.triggers if t.level == level.id):
            out(f"- {t.title}: {t.description}", 4)
            details = []
            if c := t.condition:
                bound = f"{c.threshold:g}..{c.upper:g}" if c.upper is not None else f"{c.threshold:g}"
                sustained = f" for {c.for_minutes:g} min" if c.for_minutes else ""
                details.append(f"when {c.metric} {c.op.value} {bound}{c.unit}{sustained}")
            if t.match.alertnames:
                details.append("alerts " + ", ".join(t.match.alertnames))
            if t.scenario:
                details.append(f"scenario: {rb.scenario(t.scenario).title}")
            out(f"[{t.id}] " + ("; ".join(details) or "declared by hand"), 6)


def _procedure(out: _Out, rb: Runbook) -> None:
    out.section("Rollback execution procedure")
    for phase in rb.phases:
        out()
        out(f"Phase {phase.number}: {phase.title} ({_win(phase.window)})", 2)
        if phase.replaced_by_scenario:
            out("(an incident with a scenario runs the scenario's steps here instead)", 4)
        for step in phase.steps:
            kind = " · DECISION" if step.kind == "decision" else ""
            out(f"Step {step.number}: {step.title} ({_win(step.window)}) · owner {rb.role(step.owner).title}{kind}", 4)
            for n, task in enumerate(step.tasks, start=1):
                notes = [f"{task.minutes:g} min"] if task.minutes else []
                if task.note:
                    notes.append(task.note)
                if task.optional:
                    notes.append("optional")
                out(f"{n}. {task.title} ({', '.join(notes)})", 6)
                if task.action:
                    auto = " (runs automatically when the step starts)" if task.auto else ""
                    if task.start_when is not None:
                        auto = _starts(rb, task.start_when)
                    needs = rb.action(task.action).requires
                    if needs:
                        auto += f" (only after {', '.join(rb.action(a).title for a in needs)} succeeded)"
                    out(f"$ {_command(rb.action(task.action))}{auto}", 9)
                for item in task.items:
                    out(f"[ ] {item}", 9)
                    gate = next((g for g in task.gates if g.item == item), None)
                    if gate is not None:
                        after = gate.start_when.succeeded if gate.start_when else None
                        when = f" once {rb.action(after).title} has succeeded" if after else ""
                        out(f"measured by {rb.action(gate.action).title}{when}, when a Prometheus is configured", 13)


def _command(action: Action) -> str:
    if action.kind == "prometheus":
        unit = f"{'' if action.unit == '%' else ' '}{action.unit}" if action.unit else ""
        held = f" for {action.for_seconds:g}s" if action.for_seconds else ""
        return f"PromQL {action.query} {action.op} {action.threshold:g}{unit}{held}"
    if action.kind != "shell":
        return f"{action.method} {action.url}"
    # Placeholders stay unquoted ({version}) so the line reads like the seed's command.
    return " ".join([f"./{action.script}", *(a if a.startswith("{") else shlex.quote(a) for a in action.args)])


def _actions(out: _Out, rb: Runbook) -> None:
    out.section("Actions")
    for action in rb.actions:
        extras = [action.danger.value, f"timeout {action.timeout_seconds:g}s"]
        if action.approval:
            extras.append(f"own approval: {_policy(rb, action.approval)}")
        if action.confirmation:
            extras.append(f"typed confirmation: {action.confirmation.phrase}")
        out(f"{action.id}: {action.title} [{'; '.join(extras)}]", 2)
        out(f"$ {_command(action)}", 4)
        for p in action.params:
            default = p.default or (f"from file {p.default_from_file}" if p.default_from_file else None) or (
                f"now as {p.default_now}" if p.default_now else None)
            rule = f" matching {p.pattern}" if p.pattern else (f" one of {', '.join(p.choices)}" if p.choices else "")
            out(f"{{{p.name}}}: {p.type.value}{rule}" + (f", default {default}" if default else ""), 6)
        if action.stages:
            check = f", each followed by {', '.join([*([action.check] if action.check else []), *action.stage_gates])}" \
                if action.check or action.stage_gates else ""
            out(f"stages {', '.join(f'{s}%' for s in action.stages)} into {{{action.stage_param}}}{check}", 6)


def _scenarios(out: _Out, rb: Runbook) -> None:
    out.section("Scenarios")
    for sc in rb.scenarios:
        out()
        out(f"Scenario {sc.number}: {sc.title} · {sc.execution_minutes:g} min · owner {rb.role(sc.owner).title}", 2)
        out(f"Trigger: {sc.trigger}" + (f" ({', '.join(sc.triggers)})" if sc.triggers else ""), 4)
        if sc.procedure:
            out(f"Procedure: $ {_command(rb.action(sc.procedure))}", 4)
        for n, step in enumerate(sc.steps, start=1):
            owner = f" · {rb.role(step.owner).title}" if step.owner else ""
            action = f" ▶ {rb.action(step.action).title}" if step.action else ""
            if step.start_when is not None:
                action += _starts(rb, step.start_when)
            out(f"{n}. {step.title} ({step.minutes:g} min){owner}{action}", 4)


def _starts(rb: Runbook, when: StartWhen) -> str:
    if when.succeeded:
        return f" (starts by itself once {rb.action(when.succeeded).title} has succeeded)"
    return " (starts by itself the moment the rollback is approved)"


def _validation(out: _Out, rb: Runbook) -> None:
    out.section("Rollback validation checklist")
    for checklist in rb.validation:
        out(checklist.title, 2)
        for item in checklist.items:
            out(f"[ ] {item.label}: {item.text}", 4)


def _escalation(out: _Out, rb: Runbook) -> None:
    out.section("Contacts and escalation")
    out("Immediate response team", 2)
    for role in (r for r in rb.roles if r.responder):
        out(f"{role.title:<20} responds within {role.response_minutes:g} min", 4)
    out("Management escalation", 2)
    for rung in rb.escalation.management:
        out(f"Level {rung.level}: {rb.role(rung.role).title:<18} within {rung.minutes:g} min", 4)
    if rb.escalation.external:
        out("External support", 2)
        for c in rb.escalation.external:
            out(f"{c.service:<10} {c.contact:<22} SLA {c.sla:<9} escalation: {c.escalation}", 4)


def _communications(out: _Out, rb: Runbook) -> None:
    out.section("Communication templates")
    for t in rb.communications:
        out(f"{t.id}: {t.title} → {t.audience.value}, drafted when {t.when.value}, approved by "
            f"{rb.role(t.approver).title}", 2)


def _follow_ups(out: _Out, rb: Runbook) -> None:
    out.section("Post-rollback procedures")
    for f in rb.follow_ups:
        out(f"{f.title} · owner {rb.role(f.owner).title}", 2)
        for group in f.groups:
            out(group.title, 4)
            for item in group.items:
                out(f"[ ] {item}", 6)


def _drills(out: _Out, rb: Runbook) -> None:
    out.section("Drills")
    for d in rb.drills:
        scenario = f" · scenario {rb.scenario(d.scenario).title}" if d.scenario else ""
        out(f"{d.title}: {d.schedule} (cron {d.cron}) · {d.duration_minutes:g} min · {d.environment} · "
            f"{d.kind}{scenario}", 2)
        if d.participants:
            out("Participants: " + ", ".join(rb.role(r).title for r in d.participants), 4)
        out(f"{d.checklist_title}:", 4)
        for item in d.items:
            out(f"[ ] {item}", 6)


def _summary(out: _Out, rb: Runbook) -> None:
    if rb.success_metrics:
        out.section("Success metrics")
        for m in rb.success_metrics:
            out(f"{m.label}: {m.target}", 2)
    for title, items in (("Key success factors", rb.key_success_factors), ("Critical points", rb.critical_points)):
        if items:
            out.section(title)
            for item in items:
                out(f"{item.label}: {item.text}", 2)
