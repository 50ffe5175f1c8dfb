"""A communication draft, its own message in the incident channel: the text, who may approve it, and where it stands."""

from __future__ import annotations

import hashlib
import json

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.runbook.model import CommsTemplate
from bot.slack.blocks import clock_time, drill_prefix, escape, truncate
from bot.store.models import CommsDraft

APPROVE, EDIT, SENT = "comms_approve", "comms_edit", "comms_sent"
APPROVE_SENT = "comms_approve_sent"  # the approver sends it themselves, now: one click for both
EDIT_MODAL = "comms_edit"
AUDIENCE = {"customers": "Customers", "status_page": "Status page", "internal": "Internal team",
            "support": "Support team", "executives": "Executives"}


def text_version(text: str) -> str:
    """The version of a draft's text an approval is bound to (carried by the Approve button)."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def button_value(draft: CommsDraft) -> str:
    return f"{draft.id}|{text_version(draft.text)}"


def parse_button_value(value: str) -> tuple[int, str] | None:
    draft, _, version = value.partition("|")
    return (int(draft), version) if draft.isdigit() and version else None


def draft_text(template: CommsTemplate, draft: CommsDraft, is_drill: bool) -> str:
    return f"{drill_prefix(is_drill)}Comms draft · {template.title} ({draft.status})"


def draft_blocks(template: CommsTemplate, draft: CommsDraft, approver_title: str, is_drill: bool,
                 statuspage: str | None = None) -> list[Block]:
    head = (f"📝 *{drill_prefix(is_drill)}{template.title}* — for {AUDIENCE[template.audience]} · "
            f"approval: {approver_title}")
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=truncate(head, 3000))),
        SectionBlock(text=MarkdownTextObject(text=truncate(">" + escape(draft.text).replace("\n", "\n>"), 3000))),
    ]
    status = {"draft": "Draft: not sent to anyone yet.",
              "approved": f"Approved by <@{draft.approved_by}>"
                          f"{' at ' + clock_time(draft.approved_at) if draft.approved_at else ''}: ready to send.",
              "sent": f"Sent by <@{draft.sent_by}>{' at ' + clock_time(draft.sent_at) if draft.sent_at else ''}."}
    note = status[draft.status] + (f" Edited by <@{draft.edited_by}>." if draft.edited_by else "")
    if statuspage:
        note += f" {statuspage}"
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(note, 2000))]))
    value = button_value(draft)
    if draft.status == "draft":
        blocks.append(ActionsBlock(block_id=f"comms|{draft.id}", elements=[
            ButtonElement(text="Approve and I'll send it", action_id=APPROVE_SENT, value=value, style="primary"),
            ButtonElement(text="Approve", action_id=APPROVE, value=value),
            ButtonElement(text="Edit…", action_id=EDIT, value=value)]))
    elif draft.status == "approved":
        blocks.append(ActionsBlock(block_id=f"comms|{draft.id}", elements=[
            ButtonElement(text="Mark as sent", action_id=SENT, value=value, style="primary"),
            ButtonElement(text="Edit…", action_id=EDIT, value=value)]))  # an edit sends it back for approval
    return blocks


def edit_modal(draft: CommsDraft, title: str) -> View:
    return View(type="modal", callback_id=EDIT_MODAL, title="Edit draft", submit="Save", close="Cancel",
                private_metadata=json.dumps({"draft": draft.id, "version": text_version(draft.text)}), blocks=[
                    SectionBlock(text=MarkdownTextObject(text=truncate(f"*{title}*", 3000))),
                    InputBlock(block_id="text", label="Text", element=PlainTextInputElement(
                        action_id="text", multiline=True, initial_value=draft.text[:3000], max_length=3000))])
