"""The declare-an-incident modal opened by `/rollback` with no arguments."""

from __future__ import annotations

import json
from dataclasses import dataclass

from slack_sdk.models.blocks import (
    InputBlock,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.runbook.model import Runbook
from bot.slack.blocks import truncate

CALLBACK_ID = "declare_incident"
NO_SCENARIO = "none"


@dataclass(frozen=True)
class Prefill:
    """What the form starts with when opened from a triage post: the alert's guess at trigger and level."""

    trigger_id: str | None = None
    level: str | None = None
    description: str = ""


def declare_modal(runbook: Runbook, channel_id: str, prefill: Prefill | None = None) -> View:
    scenarios = [Option(value=NO_SCENARIO, text="No scenario: the generic procedure")] + [
        Option(value=s.id, text=truncate(f"{s.number}. {s.title} ({s.execution_minutes:g} min)", 75))
        for s in runbook.scenarios
    ]
    triggers = [Option(value=t.id, text=truncate(f"{t.title} ({t.level})", 75)) for t in runbook.triggers][:100]
    levels = [Option(value=lv.id, text=truncate(f"{lv.title}: decide within {lv.decision_minutes:g} min", 75))
              for lv in runbook.levels]
    prefill = prefill or Prefill()
    trigger = next((o for o in triggers if o.value == prefill.trigger_id), None)
    level = next((o for o in levels if o.value == prefill.level), levels[0])
    return View(
        type="modal", callback_id=CALLBACK_ID, title="Declare a rollback", submit="Declare", close="Cancel",
        private_metadata=json.dumps({"channel": channel_id}),  # sealed by the handler that opens it
        blocks=[
            SectionBlock(text="Opens a war room, invites the responders and posts the procedure."),
            InputBlock(block_id="scenario", label="Scenario", element=StaticSelectElement(
                action_id="value", options=scenarios, initial_option=scenarios[0])),
            InputBlock(block_id="trigger", label="Triggering condition", optional=True,
                       element=StaticSelectElement(action_id="value", options=triggers, initial_option=trigger)),
            InputBlock(block_id="level", label="Level", element=StaticSelectElement(
                action_id="value", options=levels, initial_option=level)),
            InputBlock(block_id="version", label="Version to roll back to", optional=True,
                       element=PlainTextInputElement(action_id="value", placeholder="e.g. v2.3.1", max_length=64)),
            InputBlock(block_id="description", label="What is happening", optional=True,
                       element=PlainTextInputElement(action_id="value", multiline=True, max_length=500,
                                                     initial_value=truncate(prefill.description, 500) or None)),
        ],
    )


def submitted_values(state: dict[str, dict[str, dict[str, object]]]) -> dict[str, str]:
    """Flatten a view_submission's state to {block_id: value} (select -> option value, input -> text)."""
    values: dict[str, str] = {}
    for block_id, actions in state.items():
        field = actions.get("value") or {}
        selected = field.get("selected_option") if isinstance(field, dict) else None
        if isinstance(selected, dict):
            values[block_id] = str(selected.get("value", ""))
        elif isinstance(field, dict) and field.get("value") is not None:
            values[block_id] = str(field.get("value"))
    return values
