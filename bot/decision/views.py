"""Approval messages: the rollback decision in the war room and the approval of a destructive action in the
incident thread. Pure functions: an ApprovalView in, blocks out; re-rendered after every vote.

The action ids below are the contract with handlers/approvals.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.slack.blocks import clock_time, drill_prefix, duration, escape, mentions, truncate

# The rollback decision message (key "decision").
APPROVE = "decision_approve"
DECLINE = "decision_decline"
CHANGE_LEVEL = "decision_level"
REOPEN = "decision_reopen"  # no longer shown (a deadline never locks the vote); older messages may still carry it
# A destructive action's approval message (key "approval:execution:<id>").
ACTION_APPROVE = "action_approve"
ACTION_DECLINE = "action_decline"
ACTION_CONFIRM = "action_confirm"
# The decline modal (both kinds): callback id, and its input's block/action id.
DECLINE_MODAL = "approval_decline"
REASON = "reason"

ICON = {"approve": "✅", "decline": "❌"}


@dataclass(frozen=True)
class RoleLine:
    role: str
    title: str
    holders: tuple[str, ...]
    filled_by: str | None = None  # the approver counted for this role's slot


@dataclass(frozen=True)
class VoteLine:
    user: str
    vote: str  # approve | decline
    roles: tuple[str, ...]  # titles of the policy's roles the voter held when voting
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class LevelChoice:
    id: str
    title: str
    minutes: float
    needs: str  # the level's policy in words


@dataclass(frozen=True)
class ApprovalView:
    request_id: str
    subject: str  # "rollback" or "execution:<id>"
    title: str  # the level title (rollback) or the action title
    policy_kind: str  # any_of | all_of
    needs: str  # "Technical Lead + DevOps Lead"
    roles: tuple[RoleLine, ...]
    status: str  # pending | approved | declined (expired: stored by older versions, shown as overdue)
    now: datetime
    requested_by: str
    votes: tuple[VoteLine, ...] = ()
    missing: tuple[str, ...] = ()  # titles of roles nobody fills yet
    deadline: datetime | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    decided_by: tuple[str, ...] = ()
    is_drill: bool = False
    description: str = ""  # the level's description, or what the action does and to which step
    levels: tuple[LevelChoice, ...] = ()  # rollback only: the Change level choices
    details: tuple[str, ...] = ()  # action only: its parameters, e.g. "restore_point: backup_0114"
    confirmation_prompt: str = ""  # action only: empty when no phrase is needed
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None

    @property
    def is_rollback(self) -> bool:
        return self.subject == "rollback"

    @property
    def open(self) -> bool:
        return self.status in ("pending", "expired")

    @property
    def overdue_seconds(self) -> float:
        """How late an undecided request is (0 before its deadline, or without one)."""
        if not self.open or self.deadline is None:
            return 0.0
        return max(0.0, (self.now - self.deadline).total_seconds())


def needs_words(kind: str, needs: str) -> str:
    if kind == "any_of":
        return f"{needs} (any one of them)" if " OR " in needs else needs
    return f"{needs} (a different person for each)" if " + " in needs else needs


def approval_text(view: ApprovalView) -> str:
    """The notification text (and the fallback for clients without blocks)."""
    prefix = drill_prefix(view.is_drill)
    what = f"Rollback decision ({view.title})" if view.is_rollback else f"Approval for {view.title}"
    state = {"pending": f"needs {view.needs}", "approved": "approved", "declined": "declined",
             "expired": f"needs {view.needs}"}.get(view.status, view.status)
    if view.overdue_seconds > 0:
        state = f"OVERDUE, {state}"
    return f"{prefix}{what}: {state}"


def approval_blocks(view: ApprovalView) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(_head(view), 3000)))]
    if view.details:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate("\n".join(view.details), 3000))))
    needs = f"*Needs:* {needs_words(view.policy_kind, view.needs)}"
    if view.confirmation_prompt:
        needs += " *and* the typed confirmation phrase"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(needs + "\n" + _roles(view), 3000))))
    timing = _timing(view)
    if timing:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(timing, 3000))))
    if view.confirmation_prompt:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(_confirmation(view), 3000))))
    if view.votes:
        lines = [_vote(v) for v in view.votes]
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate("\n".join(lines), 3000))]))
    outcome = _outcome(view)
    if outcome:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(outcome, 3000))))
    actions = _actions(view)
    if actions:
        blocks.append(ActionsBlock(block_id=f"approval|{view.request_id}", elements=actions))
    return blocks


def _head(view: ApprovalView) -> str:
    prefix = drill_prefix(view.is_drill)
    if view.is_rollback and view.overdue_seconds > 0:
        head = f"🔴 *{prefix}OVERDUE — Rollback decision — {view.title} level*"
    elif view.is_rollback:
        head = f"🗳️ *{prefix}Rollback decision — {view.title} level*"
    else:
        head = f"🔐 *{prefix}Approval needed: {view.title}*\nRequested by <@{view.requested_by}>"
    return head + (f"\n{view.description}" if view.description else "")


def _roles(view: ApprovalView) -> str:
    lines = []
    for line in view.roles:
        mark = f" — ✅ <@{line.filled_by}>" if line.filled_by else ""
        lines.append(f"• *{line.title}*: {mentions(line.holders)}{mark}")
    return "\n".join(lines)


def _timing(view: ApprovalView) -> str:
    if view.deadline is None or not view.open:
        return ""
    late = view.overdue_seconds
    if late > 0:
        # Overdue escalates; it never locks: the buttons below stay live and a vote now still counts.
        return (f":warning: *Overdue by {duration(late)}* — it was due at *{clock_time(view.deadline)}*. "
                "Management escalation is brought forward and the secondaries are paged. "
                "Approve or Decline below still counts: decide now.")
    left = (view.deadline - view.now).total_seconds()
    return f":stopwatch: Decide by *{clock_time(view.deadline)}* — {duration(left)} left"


def _confirmation(view: ApprovalView) -> str:
    if view.confirmed_by:
        at = f" at {clock_time(view.confirmed_at)}" if view.confirmed_at else ""
        return f":keyboard: Confirmation phrase typed by <@{view.confirmed_by}>{at}."
    return f":keyboard: {view.confirmation_prompt} _(the requester or an approver types it)_"


def _vote(vote: VoteLine) -> str:
    roles = f" as {' & '.join(vote.roles)}" if vote.roles else ""
    verb = "approved" if vote.vote == "approve" else "declined"
    line = f"{ICON.get(vote.vote, '•')} <@{vote.user}> {verb}{roles} at {clock_time(vote.at)}"
    return line + (f": {escape(vote.reason)}" if vote.reason else "")


def _outcome(view: ApprovalView) -> str:
    at = f" at {clock_time(view.decided_at)}" if view.decided_at else ""
    by = f" by {', '.join(f'<@{u}>' for u in view.decided_by)}" if view.decided_by else ""
    if view.status == "approved":
        after = " The rollback clock has started." if view.is_rollback else " The action may run."
        return f":white_check_mark: *{'Rollback' if view.is_rollback else 'Action'} approved*{at}{by}.{after}"
    if view.status == "declined":
        return f":x: *{'Rollback' if view.is_rollback else 'Action'} declined*{at}{by}" + \
            (f": {escape(view.reason)}" if view.reason else ".")
    if view.open and view.missing:
        joiner = " or " if view.policy_kind == "any_of" else ", "
        return f"Waiting for: {joiner.join(view.missing)}"
    if view.open and view.confirmation_prompt and not view.confirmed_by:
        return "Waiting for: the typed confirmation phrase"
    return ""


def _actions(view: ApprovalView) -> list[ButtonElement | StaticSelectElement]:
    if view.status in ("approved", "declined"):
        return []  # decided: the buttons go
    if view.is_rollback:
        # Live before and after the deadline alike: a deadline escalates, it never takes the vote away.
        elements: list[ButtonElement | StaticSelectElement] = [
            ButtonElement(text="Approve rollback", action_id=APPROVE, value=view.request_id, style="primary"),
            ButtonElement(text="Decline…", action_id=DECLINE, value=view.request_id, style="danger")]
        if view.levels:
            options = [Option(value=lv.id, text=truncate(f"{lv.title}: {lv.needs}, {lv.minutes:g} min", 75))
                       for lv in view.levels]
            elements.append(StaticSelectElement(action_id=CHANGE_LEVEL, placeholder="Change level…",
                                                options=options))
        return elements
    if not view.open:
        return []
    elements = [ButtonElement(text="Approve", action_id=ACTION_APPROVE, value=view.request_id, style="primary"),
                ButtonElement(text="Decline…", action_id=ACTION_DECLINE, value=view.request_id, style="danger")]
    if view.confirmation_prompt and not view.confirmed_by:
        elements.append(ButtonElement(text="Type confirmation phrase…", action_id=ACTION_CONFIRM,
                                      value=view.request_id))
    return elements


def decline_modal(request_id: str, what: str) -> View:
    """Decline needs a reason; it goes on the timeline with the vote."""
    return View(
        type="modal", callback_id=DECLINE_MODAL, title="Decline", submit="Decline", close="Cancel",
        private_metadata=json.dumps({"request": request_id}),
        blocks=[
            SectionBlock(text=truncate(f"*{what}*\nA decline by an authorized person ends the vote.", 3000)),
            InputBlock(block_id=REASON, label="Reason",
                       element=PlainTextInputElement(action_id=REASON, multiline=True, max_length=500)),
        ],
    )


def declined_reason(state: dict[str, dict[str, dict[str, object]]]) -> str:
    value = (state.get(REASON) or {}).get(REASON) or {}
    return str(value.get("value") or "").strip() if isinstance(value, dict) else ""
