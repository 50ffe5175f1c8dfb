"""The drill scorecard message."""

from __future__ import annotations

from slack_sdk.models.blocks import Block, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.reports.scorecard import Scorecard
from bot.slack.blocks import truncate

MARK = {"on_time": "✅ on time", "late": "⚠️ late", "skipped": "⏭️ skipped", "not_done": "❌ not done"}


def scorecard_text(card: Scorecard) -> str:
    return f"[DRILL] Scorecard: {card.drill_title}"


def scorecard_blocks(card: Scorecard) -> list[Block]:
    def at(value: float | None) -> str:
        return "—" if value is None else f"{value:g} min"

    steps = "\n".join(
        f"{MARK[s.status]} · Step {s.number}: {s.title} — done at {at(s.done_at_min)} (window ends {s.window_end_min:g})"
        + (f", {s.late_min:g} min late" if s.status == "late" else "") for s in card.steps)
    phases = "\n".join(f"{'✅' if p.on_time else '⚠️'} Phase {p.number}: {p.title} — {at(p.done_at_min)} "
                       f"(window ends {p.window_end_min:g})" for p in card.phases)
    decision = (f"{'✅' if card.decision_on_time else '⚠️'} Decision at {at(card.decision_min)} "
                f"(deadline {card.decision_deadline_min:g} min)" if card.decision_min is not None
                else "❌ No rollback decision was made")
    total = f"Total {at(card.total_min)} against the {card.rto_min:g}-minute RTO"
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"🧪 {scorecard_text(card)}", 150)),
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*{decision}*\n{total}\n"
                                                          f"Late: {len(card.late)} · skipped or not done: "
                                                          f"{len(card.skipped)}", 3000))),
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*Phases*\n{phases}", 3000))),
        SectionBlock(text=MarkdownTextObject(text=truncate(f"*Steps*\n{steps}", 3000))),
    ]
    if card.objectives:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(
            "*Drill objectives* (review in the retro)\n" + "\n".join(f"☐ {o}" for o in card.objectives), 3000))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Kept in the store with the drill incident.")]))
    return blocks
