"""The incident timeline as messages: one line per event with its time since the start and who, split into
pages that fit Slack's limits (50 blocks a message, 3000 characters a section)."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.slack.blocks import duration, escape, truncate
from bot.store.models import TimelineEvent

SECTION_CHARS = 2900
BLOCKS_PER_MESSAGE = 40


def event_line(event: TimelineEvent, start: datetime) -> str:
    who = f" — <@{event.actor}>" if event.actor and event.actor.startswith("U") else (
        f" — {event.actor}" if event.actor else "")
    return f"`+{duration((event.at - start).total_seconds()):>7}` {truncate(event.text, 400)}{who}"


def timeline_pages(events: list[TimelineEvent], start: datetime, title: str) -> list[list[Block]]:
    sections: list[str] = []
    current = f"*Timeline: {escape(truncate(title, 200))}* ({len(events)} events)"
    for event in events:
        line = event_line(event, start)
        if len(current) + len(line) + 1 > SECTION_CHARS:
            sections.append(current)
            current = line
        else:
            current += "\n" + line
    sections.append(current)
    blocks = [SectionBlock(text=MarkdownTextObject(text=s)) for s in sections]
    return [list(blocks[i:i + BLOCKS_PER_MESSAGE]) for i in range(0, len(blocks), BLOCKS_PER_MESSAGE)]
