"""Pages and escalation DMs: what happened, where it stands, a link to the war room, and Acknowledge."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slack.blocks import clock_time, drill_prefix, duration, escape, truncate

ACK = "page_ack"


@dataclass(frozen=True)
class PageView:
    page_id: int
    kind: str  # responder | secondary | management
    role_title: str
    incident_id: str
    title: str
    level: str
    phase: str
    elapsed_seconds: float
    rto_minutes: float
    working: str  # mentions of who is on it
    decision: str
    channel_id: str | None
    channel_url: str | None
    is_drill: bool
    acked_at_text: str | None = None


def page_text(view: PageView) -> str:
    what = "Escalation" if view.kind == "management" else "Page"
    return f"{drill_prefix(view.is_drill)}{what} for {view.role_title}: {escape(view.title)} ({view.level})"


def page_blocks(view: PageView, by_acting: bool = False) -> list[Block]:
    """`by_acting`: the acknowledgement was the person acting in the incident, not the button."""
    lead = {
        "responder": f"You are paged as *{view.role_title}* for a rollback incident.",
        "secondary": f"You are paged as backup *{view.role_title}*: the primary has not acknowledged.",
        "management": f"For your information as *{view.role_title}*, on the escalation ladder.",
    }[view.kind]
    where = f"<#{view.channel_id}>" if view.channel_id else "the war room (opening)"
    body = (f"{'🧪 *DRILL* — no production impact. ' if view.is_drill else ''}{lead}\n"
            f"*{escape(truncate(view.title, 200))}* — level *{view.level}*\n"
            f"Phase: {view.phase} · {duration(view.elapsed_seconds)} elapsed of the {view.rto_minutes:g}-minute target\n"
            f"Decision: {view.decision}\nWorking on it: {view.working}\nWar room: {where}")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(body, 3000)))]
    if view.acked_at_text:
        how = " — you acted in the incident" if by_acting else ""
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"✅ Acknowledged {view.acked_at_text}{how}")]))
        return blocks
    buttons: list[ButtonElement] = []
    if view.kind == "management":
        # The ladder notifies (the runbook's "notification time"); nothing waits on an answer, so none is asked.
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="For your information: nothing to acknowledge.")]))
    else:
        buttons.append(ButtonElement(text="Acknowledge", action_id=ACK, value=str(view.page_id), style="primary"))
    if view.channel_url:
        buttons.append(ButtonElement(text="Join the war room", action_id="page_join", url=view.channel_url))
    if buttons:
        blocks.append(ActionsBlock(elements=buttons))
    return blocks


def acked_text(seconds: float, at_clock: object) -> str:
    return f"after {duration(seconds)} (at {clock_time(at_clock)})"  # type: ignore[arg-type]
