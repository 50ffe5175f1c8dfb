"""One message per step: title, owner, due time, script, and its items as checkboxes (10 options per element);
one line once finished."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    MarkdownTextObject,
    Option,
    SectionBlock,
)

from bot.core.snapshot import Snapshot
from bot.runbook.model import Gate, Step, item_id
from bot.slack.blocks import clock_time, drill_prefix, duration, escape, mentions, minutes, truncate
from bot.store.models import StepState

MAX_OPTIONS = 10
STATUS_ICON = {"pending": "⏳", "active": "▶️", "done": "✅", "skipped": "⏭️"}


def checklist_block_id(step_id: str, task_id: str, chunk: int) -> str:
    return f"cl|{step_id}|{task_id}|{chunk}"


def parse_checklist_block_id(block_id: str) -> tuple[str, str] | None:
    parts = block_id.split("|")
    if len(parts) != 4 or parts[0] != "cl":
        return None
    return parts[1], parts[2]


def step_text(snap: Snapshot, step: Step) -> str:
    return f"{drill_prefix(snap.incident.is_drill)}Step {step.number}: {step.title}"


def step_blocks(snap: Snapshot, step: Step) -> list[Block]:
    state = snap.steps.get(step.id)
    status = state.status if state else "pending"
    role = snap.runbook.role(step.owner)
    if state is not None and status in ("done", "skipped") and state.completed_at:
        return _collapsed(snap, step, state)
    head = (f"{STATUS_ICON.get(status, '')} *Step {step.number}: {step.title}*\n"
            f"Owner: *{role.title}* ({mentions(snap.holders.get(step.owner, []))}) · "
            f"due by {clock_time(snap.due_at(step))}")
    if snap.is_overdue(step):
        head += f"\n:warning: *Overdue by {duration((snap.now - snap.due_at(step)).total_seconds())}*"
    if step.summary:
        head += f"\n_{step.summary}_"
    blocks: list[Block] = [SectionBlock(block_id=f"step|{step.id}", text=MarkdownTextObject(text=truncate(head, 3000)))]
    editable = status in ("pending", "active") and snap.incident.status == "open"
    for number, task in enumerate(step.tasks, start=1):
        line = f"*{number}. {task.title}*" + (f" ({minutes(task.minutes)})" if task.minutes else "")
        if task.optional:
            line += " · _only if required_"
        if task.action:
            action = snap.runbook.action(task.action)
            if action.kind == "shell" and action.script:
                line += f"\n`./{action.script} {' '.join(action.args)}`".rstrip()
            else:
                line += f"\n_{action.title}_"
        if task.note:
            line += f"\n_{task.note}_"
        done = snap.done_before.get((step.id, task.id))
        if done:  # running it again would undo part of what it did (traffic back to its first stage)
            line += f"\n:white_check_mark: {done}: this task is done by that run."
        for gate in task.gates:
            line += "\n" + gate_line(snap, gate)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(line, 3000))))
        options = [(item_id(task.id, i), text) for i, text in enumerate(task.items)]
        for chunk_no, start in enumerate(range(0, len(options), MAX_OPTIONS)):
            chunk = options[start:start + MAX_OPTIONS]
            opts = [Option(value=iid, text=MarkdownTextObject(text=truncate(text, 75))) for iid, text in chunk]
            initial = [o for o, (iid, _) in zip(opts, chunk, strict=True) if snap.checked(step.id, iid)]
            if editable:
                blocks.append(ActionsBlock(block_id=checklist_block_id(step.id, task.id, chunk_no), elements=[
                    CheckboxesElement(action_id="checklist_tick", options=opts, initial_options=initial or None),
                ]))
            else:
                ticked = "\n".join(f"{'☑' if snap.checked(step.id, iid) else '☐'} {text}" for iid, text in chunk)
                blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(ticked, 3000))))
    buttons: list[ButtonElement] = []
    if editable:
        buttons.append(ButtonElement(text="Mark step done", action_id="step_done", value=step.id, style="primary"))
        buttons.append(ButtonElement(text="Skip step…", action_id="step_skip", value=step.id))
        for task in step.tasks:
            if task.action and (step.id, task.id) not in snap.done_before:
                title = snap.runbook.action(task.action).title
                buttons.append(ButtonElement(text=truncate(f"Run: {title}", 75), action_id=f"run_action|{task.id}",
                                             value=f"{step.id}|{task.id}|{task.action}"))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"step_actions|{step.id}", elements=buttons[:25]))
    return blocks


def gate_line(snap: Snapshot, gate: Gate) -> str:
    """Whether the metrics measure an item or a person must: never silently neither."""
    action = snap.runbook.action(gate.action)
    if gate.action not in snap.measured:
        return (f":raised_hand: “{escape(gate.item)}” is a person's call: no Prometheus is configured for Rollbot, so "
                f"“{action.title}” is not measured. Check it yourself and tick it.")
    when = "as the phase starts"
    if gate.start_when is not None:
        when = (f"after “{snap.runbook.action(gate.start_when.succeeded).title}” succeeds" if gate.start_when.succeeded
                else "once the rollback is approved")
    unit = f"{'' if action.unit == '%' else ' '}{action.unit}" if action.unit else ""
    held = f" for {duration(action.for_seconds)}" if action.for_seconds else ""
    return (f":chart_with_upwards_trend: “{escape(gate.item)}” is measured from Prometheus {when} ({action.title}: "
            f"{action.op} {action.threshold:g}{unit}{held}); a pass ticks it, a failure or no data leaves it to you.")


def _collapsed(snap: Snapshot, step: Step, state: StepState) -> list[Block]:
    """A finished step is one line — who, when, how long, late or not — so the live steps stay in view; what
    ran and its output stay in the message's thread."""
    assert state.completed_at is not None
    who = f" by <@{state.completed_by}>" if state.completed_by and state.completed_by.startswith(("U", "W")) else ""
    took = f", took {duration((state.completed_at - state.started_at).total_seconds())}" if state.started_at else ""
    late = (state.completed_at - snap.due_at(step)).total_seconds()
    timing = f"{duration(late)} late" if late > 0 else "on time"
    why = f" — {escape(state.reason)}" if state.status == "skipped" and state.reason else ""
    line = (f"{STATUS_ICON.get(state.status, '')} *Step {step.number}: {step.title}* — {state.status}{who} at "
            f"{clock_time(state.completed_at)} ({timing}{took}){why}")
    return [SectionBlock(block_id=f"step|{step.id}", text=MarkdownTextObject(text=truncate(line, 3000))),
            ContextBlock(elements=[MarkdownTextObject(text="Details and run output: this message's thread.")])]

