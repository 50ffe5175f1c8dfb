"""Action executions in the incident thread: the progress/result message, the Run modal, the scenario runner.

Pure functions: state in, blocks out. The action ids below are the contract with handlers/executions.py.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    CheckboxesElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.slack.blocks import drill_prefix, duration, escape, param_label, truncate
from bot.store.models import Execution

RUN_PREFIX = "run_action|"  # the step view's Run buttons: action_id f"run_action|{task_id}"
RUN_MODAL = "run_action"  # callback id of the Run modal
CANCEL = "execution_cancel"
RETRY = "execution_retry"
SKIP = "execution_skip"
TRAFFIC_ROLLBACK = "traffic_rollback"
TRAFFIC_RETRY = "traffic_retry"
TRAFFIC_CONTINUE = "traffic_continue"
SCENARIO_RUN = "scenario_run"
MODE_BLOCK, DRY_RUN = "mode", "dry_run"
PARAM_BLOCK = "param|"  # + parameter name; the input's action id is "value"

FINAL = ("succeeded", "failed", "timed_out", "cancelled", "interrupted", "skipped")
RETRYABLE = ("failed", "timed_out", "cancelled", "interrupted")
ICON = {"requested": "⏳", "approved": "▶️", "running": "🔄", "succeeded": "✅", "failed": "❌",
        "timed_out": "⏱️", "cancelled": "🛑", "interrupted": "⚠️", "skipped": "⏭️"}
CODE_LIMIT = 2500


@dataclass(frozen=True)
class ExecutionView:
    execution: Execution
    action_title: str
    step_label: str  # "Step 5: Application Rollback"
    is_drill: bool = False
    last_lines: tuple[str, ...] = ()
    elapsed_s: float | None = None  # while running
    deciders: str = ""  # mentions of who may decide a halted traffic restore, or judge an unproven gate's item
    approval_note: str = ""  # while waiting for approval
    gate_item: str = ""  # the checklist item this metric gate measures (its step's task's `gates`)


def command_line(argv: Sequence[str]) -> str:
    """For reading only: the argv quoted as a shell would need it (nothing is ever run through a shell)."""
    return shlex.join(argv)


def outcome_phrase(ex: Execution) -> str:
    """'succeeded in 2m13s', 'failed with exit 3', 'timed out', ... (for the message and the timeline)."""
    took = f" in {duration(ex.duration_s)}" if ex.duration_s is not None else ""
    after = f" after {duration(ex.duration_s)}" if ex.duration_s is not None else ""
    match ex.state:
        case "succeeded":
            return "dry run recorded: nothing was run" if ex.dry_run else f"succeeded{took}"
        case "failed":
            if ex.data.get("traffic_result") in ("halted", "paused"):
                return f"{ex.data['traffic_result']} at {ex.data.get('at')}%{after}"
            if ex.exit_code is not None:
                what = "exit" if ex.data.get("kind", "shell") == "shell" else "status"
                return f"failed with {what} {ex.exit_code}{after}"
            return f"failed{after}" + (f": {escape(ex.detail)}" if ex.detail else "")
        case "timed_out":
            return f"timed out{after}"
        case "cancelled":
            who = f" by <@{ex.cancel_requested_by}>" if ex.cancel_requested_by else ""
            return f"cancelled{who}{after}"
        case "interrupted":
            return "interrupted: the bot stopped while it was running, and it was not re-run"
        case "skipped":
            return "skipped"
        case "requested":
            return "waiting for approval"
        case "approved":
            return "approved, starting"
    return "running"


def execution_text(view: ExecutionView) -> str:
    ex = view.execution
    step = view.step_label.split(":")[0]  # "Step 5": the step message itself owns "Step 5: <title>"
    return f"{drill_prefix(view.is_drill)}{view.action_title} — {outcome_phrase(ex)} ({step})"


def execution_blocks(view: ExecutionView) -> list[Block]:
    ex = view.execution
    icon = "🧪" if ex.dry_run and ex.state == "succeeded" else ICON.get(ex.state, "")
    if ex.state == "running":
        elapsed = f" · {duration(view.elapsed_s)}" if view.elapsed_s is not None else ""
        head = f"{icon} *Running: {view.action_title}*{elapsed}"
    else:
        head = f"{icon} *{view.action_title}* {outcome_phrase(ex)}"
    who = "Rollbot (automatic)" if ex.requested_by == "auto" else f"<@{ex.requested_by}>"
    meta = [f"{view.step_label}", f"requested by {who}"]
    if ex.attempt > 1:
        meta.append(f"attempt {ex.attempt}")
    if ex.dry_run:
        meta.append("dry run")
    if view.is_drill:
        meta.append("drill")
    blocks: list[Block] = [SectionBlock(block_id=f"execution|{ex.id}", text=MarkdownTextObject(text=truncate(head, 3000))),
                           ContextBlock(elements=[MarkdownTextObject(text=truncate(" · ".join(meta), 3000))])]
    if ex.params:
        params = " · ".join(f"{param_label(k)} `{_value(v)}`" for k, v in ex.params.items())
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f"*Parameters* {params}", 3000))))
    if ex.argv:
        verb = "Would run" if ex.dry_run else "Command"
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_code(f"*{verb}*", command_line(ex.argv)))))
    for plan in ex.data.get("plans", [])[:6]:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_code("*Would run*", str(plan)))))
    stages = ex.data.get("stages") or []
    if stages:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(_stages(ex), 3000))))
    if gate_unproven(view):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(gate_question(view), 3000))))
    if view.approval_note and ex.state == "requested":
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(view.approval_note, 3000))))
    lines = view.last_lines or tuple(_tail(ex.output))
    if lines and not ex.dry_run:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_code("*Output* (last lines)", "\n".join(lines)))))
    if ex.truncated:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="Output was longer than the cap; "
                                                                     "the stored record keeps its start and end.")]))
    buttons = _buttons(view)
    if buttons:
        blocks.append(ActionsBlock(block_id=f"execution_actions|{ex.id}", elements=buttons))
    return blocks


def _buttons(view: ExecutionView) -> list[ButtonElement]:
    ex = view.execution
    if ex.state in ("requested", "approved", "running"):
        return [ButtonElement(text="Cancel", action_id=CANCEL, value=ex.id, style="danger")]
    traffic = ex.data.get("traffic_result")
    if ex.state in RETRYABLE and traffic in ("halted", "paused"):
        stage = int(ex.data.get("at", 0))
        buttons = []
        back = ex.data.get("rollback_to")
        if back:
            buttons.append(ButtonElement(text=f"Roll traffic back to {back}%", action_id=TRAFFIC_ROLLBACK, value=ex.id,
                                         style="danger"))
        buttons.append(ButtonElement(text=f"Retry {stage}%", action_id=TRAFFIC_RETRY, value=ex.id, style="primary"))
        following = ex.data.get("next_stage")
        if following:
            buttons.append(ButtonElement(text=f"Continue to {following}%", action_id=TRAFFIC_CONTINUE, value=ex.id))
        buttons.append(ButtonElement(text="Skip", action_id=SKIP, value=ex.id))
        return buttons
    if ex.state in RETRYABLE:
        return [ButtonElement(text="Retry", action_id=RETRY, value=ex.id, style="primary"),
                ButtonElement(text="Skip", action_id=SKIP, value=ex.id)]
    if ex.state == "succeeded" and ex.data.get("mode") == "rollback" and ex.data.get("resume_from"):
        return [ButtonElement(text=f"Retry from {ex.data['resume_from']}%", action_id=TRAFFIC_RETRY, value=ex.id)]
    return []


def _stages(ex: Execution) -> str:
    marks = {"passed": "✅", "failed": "❌", "inconclusive": "❔"}
    parts = []
    for s in ex.data.get("stages", []):
        verdict = s.get("verdict")
        mark = marks.get(verdict, "▶️" if verdict is None else "")
        parts.append(f"{mark} {s['percent']}%" + (f" ({escape(s['reason'])})" if s.get("reason") else ""))
    text = "*Traffic* " + " → ".join(parts)
    result = ex.data.get("traffic_result")
    if result == "halted":
        text += f"\n:octagonal_sign: *Halted at {ex.data.get('at')}%.* Roll traffic back, retry the stage, or continue?"
    elif result == "paused":
        text += f"\n:pause_button: *Paused at {ex.data.get('at')}%*: the check could not tell. Retry it or decide."
    return text


def traffic_decision_text(view: ExecutionView) -> str:
    """The thread reply that asks the deciders, so the halt reaches people and not only the message."""
    ex = view.execution
    verb = "halted" if ex.data.get("traffic_result") == "halted" else "paused"
    return (f":rotating_light: Traffic restore {verb} at {ex.data.get('at')}%: {escape(ex.detail)} "
            f"{view.deciders} — decide on the message above: roll traffic back, retry, or continue.").strip()


def gate_unproven(view: ExecutionView) -> bool:
    return bool(view.gate_item) and view.execution.state in ("failed", "timed_out", "interrupted")


def gate_question(view: ExecutionView) -> str:
    """A metric gate that did not pass hands its item to a person: the one who owns the step, saying why."""
    ex = view.execution
    why = ("Prometheus had no data to judge it" if "inconclusive" in (ex.detail or "")
           else "the measurement did not pass")
    return (f":raised_hand: “{escape(view.gate_item)}” is not proven: {why}. {view.deciders} — check it yourself and "
            "tick it, or Retry the measurement.").strip()


def _value(value: Any) -> str:
    return str(value).replace("`", "'")


def _code(label: str, text: str) -> str:
    body = escape(text).replace("```", "'''")  # output is untrusted: inert even inside the code block
    if len(body) > CODE_LIMIT:
        body = "…" + body[-CODE_LIMIT:]
    return f"{label}\n```{body}```"


def _tail(output: str, count: int = 5) -> list[str]:
    return output.splitlines()[-count:] if output else []


# --- the Run modal ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamField:
    name: str
    label: str
    initial: str = ""
    hint: str = ""
    secret: bool = False


@dataclass(frozen=True)
class RunModal:
    incident_id: str
    step_id: str
    task_id: str
    action_id: str
    channel: str
    action_title: str
    step_label: str
    command: str  # the command as it would run with the initial values
    fields: tuple[ParamField, ...] = ()
    needs_approval: str = ""  # who must approve, when the action needs it
    is_drill: bool = False
    danger: str = "safe"
    extra: Mapping[str, str] = field(default_factory=dict)


def run_modal(m: RunModal) -> View:
    intro = f"*{m.action_title}*\n{m.step_label}"
    if m.danger != "safe":
        intro += f"\n:warning: Danger: *{m.danger}*"
    if m.needs_approval:
        intro += f"\nNeeds approval: {m.needs_approval}. Submitting asks for it; it runs once approved."
    if m.is_drill:
        intro += "\n:test_tube: This is a drill: the command is recorded and posted, not run."
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(intro, 3000))),
                           SectionBlock(text=MarkdownTextObject(text=_code("*Command*", m.command)))]
    for f in m.fields:
        blocks.append(InputBlock(
            block_id=PARAM_BLOCK + f.name, label=truncate(f.label, 150), optional=bool(f.initial) or f.secret,
            hint=truncate(f.hint, 150) if f.hint else None,
            element=PlainTextInputElement(action_id="value", initial_value=f.initial or None, max_length=256)))
    blocks.append(InputBlock(block_id=MODE_BLOCK, label="Mode", optional=True, element=CheckboxesElement(
        action_id=DRY_RUN, options=[Option(value="dry_run", text=MarkdownTextObject(
            text="*Dry run*: record and post the exact command without running it"))])))
    meta = {"incident": m.incident_id, "step": m.step_id, "task": m.task_id, "action": m.action_id,
            "channel": m.channel, **m.extra}
    return View(type="modal", callback_id=RUN_MODAL, title="Run action",
                submit="Request approval" if m.needs_approval else "Run", close="Cancel",
                private_metadata=json.dumps(meta), blocks=blocks)


def modal_values(state_values: Mapping[str, Any]) -> tuple[dict[str, str], bool]:
    """(typed parameter values, dry run?) from a Run modal's submitted state."""
    typed: dict[str, str] = {}
    dry = False
    for block_id, actions in state_values.items():
        if block_id.startswith(PARAM_BLOCK):
            value = (actions.get("value") or {}).get("value")
            typed[block_id[len(PARAM_BLOCK):]] = (value or "").strip()
        elif block_id == MODE_BLOCK:
            selected = (actions.get(DRY_RUN) or {}).get("selected_options") or []
            dry = any(o.get("value") == "dry_run" for o in selected)
    return typed, dry


# --- the scenario runner message -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioStepLine:
    number: int
    title: str
    status: str  # pending | active | done | skipped
    action_title: str | None
    execution_state: str | None = None


def scenario_text(title: str, is_drill: bool) -> str:
    return f"{drill_prefix(is_drill)}Scenario: {title}"


def scenario_blocks(title: str, phase_id: str, steps: Sequence[ScenarioStepLine], *, started_by: str | None,
                    is_drill: bool = False, waiting_for: str = "") -> list[Block]:
    icons = {"pending": "⏳", "active": "▶️", "done": "✅", "skipped": "⏭️"}
    lines = []
    for s in steps:
        what = f" · `{s.action_title}`" if s.action_title else " · _by hand_"
        state = f" ({s.execution_state.replace('_', ' ')})" if s.execution_state else ""
        lines.append(f"{icons.get(s.status, '')} Step {s.number}: {s.title}{what}{state}")
    head = f"*{drill_prefix(is_drill)}Scenario: {title}*\n" + "\n".join(lines)
    blocks: list[Block] = [SectionBlock(block_id=f"scenario|{phase_id}", text=MarkdownTextObject(text=truncate(head, 3000)))]
    if started_by:
        note = f"Running the scenario's actions in order, started by <@{started_by}>."
        if waiting_for:
            note += f" {waiting_for}"
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(note, 3000))]))
    else:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="Run scenario: runs each step's action in order and pauses for the steps done by hand.")]))
        blocks.append(ActionsBlock(block_id=f"scenario_actions|{phase_id}", elements=[
            ButtonElement(text="Run scenario", action_id=SCENARIO_RUN, value=phase_id, style="primary")]))
    return blocks
