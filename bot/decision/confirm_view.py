"""The typed-confirmation modal of a destructive action: the runbook's prompt, the phrase to type, and the input.

The phrase is checked on the server against a stored challenge (bot/decision/confirmation.py); the modal only
carries the challenge id, never a secret.
"""

from __future__ import annotations

import json
from datetime import datetime

from slack_sdk.models.blocks import ContextBlock, InputBlock, MarkdownTextObject, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.slack.blocks import clock_time, truncate

CONFIRM_MODAL = "action_confirm_phrase"  # callback id
PHRASE = "phrase"  # the input's block id and action id


def confirm_modal(challenge_id: str, action_title: str, prompt: str, phrase: str, expires_at: datetime) -> View:
    return View(
        type="modal", callback_id=CONFIRM_MODAL, title="Confirm", submit="Confirm", close="Cancel",
        private_metadata=json.dumps({"challenge": challenge_id}),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=truncate(
                f":warning: *{action_title}*\n{prompt}\nType exactly: `{phrase}`", 3000))),
            InputBlock(block_id=PHRASE, label="Confirmation phrase",
                       element=PlainTextInputElement(action_id=PHRASE, max_length=200)),
            ContextBlock(elements=[MarkdownTextObject(text=f"This confirmation expires at {clock_time(expires_at)} "
                                                           "and can be used once.")]),
        ],
    )


def challenge_of(private_metadata: str | None) -> str:
    try:
        meta = json.loads(private_metadata or "{}")
    except json.JSONDecodeError:
        return ""
    return str(meta.get("challenge", "")) if isinstance(meta, dict) else ""


def typed_phrase(state: dict[str, dict[str, dict[str, object]]]) -> str:
    value = (state.get(PHRASE) or {}).get(PHRASE) or {}
    return str(value.get("value") or "") if isinstance(value, dict) else ""
