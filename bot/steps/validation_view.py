"""The runbook's validation checklists (technical, functional, business) as checkbox messages."""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    MarkdownTextObject,
    Option,
    SectionBlock,
)

from bot.runbook.model import ValidationChecklist
from bot.slack.blocks import drill_prefix, truncate

TICK = "validation_tick"
CONFIRM_ALL = "validation_all"
MAX_OPTIONS = 10


def validation_step_id(checklist_id: str) -> str:
    """Validation ticks are stored like step ticks, under this pseudo-step id."""
    return f"validation:{checklist_id}"


def validation_text(checklist: ValidationChecklist, is_drill: bool) -> str:
    return f"{drill_prefix(is_drill)}Validation: {checklist.title}"


def validation_blocks(checklist: ValidationChecklist, ticked: set[str], editable: bool) -> list[Block]:
    done = sum(1 for i in range(len(checklist.items)) if f"{checklist.id}.{i + 1}" in ticked)
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(
        text=f"🔎 *{checklist.title}* — {done}/{len(checklist.items)} confirmed"))]
    items = [(f"{checklist.id}.{i + 1}", f"*{item.label}*: {item.text}") for i, item in enumerate(checklist.items)]
    for chunk, start in enumerate(range(0, len(items), MAX_OPTIONS)):
        part = items[start:start + MAX_OPTIONS]
        if editable:
            options = [Option(value=v, text=MarkdownTextObject(text=truncate(t, 75))) for v, t in part]
            initial = [o for o, (v, _) in zip(options, part, strict=True) if v in ticked]
            blocks.append(ActionsBlock(block_id=f"vl|{checklist.id}|{chunk}", elements=[
                CheckboxesElement(action_id=TICK, options=options, initial_options=initial or None)]))
        else:
            blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(
                "\n".join(f"{'☑' if v in ticked else '☐'} {t}" for v, t in part), 3000))))
    left = len(checklist.items) - done
    if editable and left > 1:  # the owner who has checked everything says so once, not box by box
        blocks.append(ActionsBlock(block_id=f"va|{checklist.id}", elements=[ButtonElement(
            text=f"All {left} left confirmed" if done else f"All {left} confirmed", action_id=CONFIRM_ALL,
            value=checklist.id)]))
    return blocks
