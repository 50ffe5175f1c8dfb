"""The pinned incident header: re-rendered from state whenever the incident changes."""

from __future__ import annotations

from datetime import timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.engine.snapshot import Snapshot
from bot.views.common import clock_time, drill_prefix, duration, truncate

STAGE_LABELS = {
    "deciding": "Awaiting rollback decision",
    "declined": "Rollback declined",
    "rolling_back": "Rolling back",
    "validating": "Validating",
    "stabilizing": "Stabilizing",
    "resolved": "Resolved",
}


def header_text(snap: Snapshot) -> str:
    inc = snap.incident
    return f"{drill_prefix(inc.is_drill)}Rollback incident {inc.id}: {inc.title} ({inc.level})"


def header_blocks(snap: Snapshot) -> list[Block]:
    inc, runbook = snap.incident, snap.runbook
    level = runbook.level(inc.level)
    rto = runbook.objectives.rto_minutes
    elapsed = snap.elapsed_seconds
    left = rto * 60 - elapsed
    deadline = snap.decision_deadline or inc.declared_at + timedelta(minutes=level.decision_minutes)
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    done, total = snap.done_count()
    decision = {
        None: f"due by {clock_time(deadline)} ({level.decision_minutes:g} min, needs {_policy(snap)})",
        "approved": f"approved at {clock_time(inc.decided_at)}" if inc.decided_at else "approved",
        "declined": "declined",
    }[inc.decision]
    trigger = runbook.trigger(inc.trigger_id).title if inc.trigger_id else "Declared by hand"
    fields = [
        MarkdownTextObject(text=f"*Level*\n{level.title}: {truncate(level.description, 120)}"),
        MarkdownTextObject(text=f"*Trigger*\n{truncate(trigger, 200)}"),
        MarkdownTextObject(text=f"*Declared by*\n{_who(inc.declared_by)} at {clock_time(inc.declared_at)}"),
        MarkdownTextObject(text=f"*Status*\n{STAGE_LABELS.get(inc.stage, inc.stage)}"),
        MarkdownTextObject(text=f"*Incident clock*\n{duration(elapsed)} elapsed · "
                                f"{'RTO passed' if left < 0 else duration(left) + ' to RTO'}"),
        MarkdownTextObject(text=f"*Decision*\n{decision}"),
        MarkdownTextObject(text=f"*Objectives*\nRTO {rto:g} min · RPO {runbook.objectives.rpo_minutes:g} min"),
        MarkdownTextObject(text=f"*Phase*\n{_phase(phase)} · steps {done}/{total}"),
    ]
    if snap.procedure.scenario:
        fields.append(MarkdownTextObject(text=f"*Scenario*\n{snap.procedure.scenario.title}"))
    if inc.version:
        fields.append(MarkdownTextObject(text=f"*Roll back to*\n`{inc.version}`"))
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"{'🧪 ' if inc.is_drill else '🚨 '}{header_text(snap)}", 150)),
        SectionBlock(fields=fields),
    ]
    overdue = snap.overdue_steps()
    if overdue:
        late = ", ".join(f"Step {s.number} ({duration((snap.now - snap.due_at(s)).total_seconds())} late)"
                         for s in overdue)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f":warning: *Overdue:* {late}", 3000))))
    if inc.evidence or inc.description:
        evidence = "\n".join(x for x in (inc.description, inc.evidence) if x)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(evidence, 2000))]))
    blocks.append(DividerBlock())
    blocks.append(ActionsBlock(block_id="header_actions", elements=[
        ButtonElement(text="Status", action_id="incident_status", value=inc.id),
    ]))
    return blocks


def _policy(snap: Snapshot) -> str:
    policy = snap.runbook.level(snap.incident.level).approval
    titles = [snap.runbook.role(r).title for r in policy.roles]
    return " OR ".join(titles) if policy.any_of else " + ".join(titles)


def _phase(phase: object) -> str:
    return f"{phase.number}. {phase.title}" if phase is not None else "—"  # type: ignore[attr-defined]


def _who(actor: str) -> str:
    return f"<@{actor}>" if actor.startswith(("U", "W")) else actor
