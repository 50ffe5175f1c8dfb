"""One message per step: title, owner, window, script, and its items as checkboxes (10 options per element)."""

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

from bot.engine.snapshot import Snapshot
from bot.runbook.model import Step, item_id
from bot.views.common import clock_time, drill_prefix, duration, mentions, minutes, truncate, window

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
    head = (f"{STATUS_ICON.get(status, '')} *Step {step.number}: {step.title}*\n"
            f"Owner: *{role.title}* ({mentions(snap.holders.get(step.owner, []))}) · window {window(*_w(step))}")
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
            if task.action:
                title = snap.runbook.action(task.action).title
                buttons.append(ButtonElement(text=truncate(f"Run: {title}", 75), action_id=f"run_action|{task.id}",
                                             value=f"{step.id}|{task.id}|{task.action}"))
    if buttons:
        blocks.append(ActionsBlock(block_id=f"step_actions|{step.id}", elements=buttons[:25]))
    if state and state.status in ("done", "skipped") and state.completed_at:
        who = f" by <@{state.completed_by}>" if state.completed_by else ""
        why = f": {state.reason}" if state.reason else ""
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=truncate(f"{state.status.capitalize()}{who} at {clock_time(state.completed_at)}{why}", 3000))]))
    return blocks


def _w(step: Step) -> tuple[float, float]:
    return step.window.start, step.window.end
