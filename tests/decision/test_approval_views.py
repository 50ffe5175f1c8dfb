"""The approval messages and modals are valid Block Kit in every state, and their buttons go once decided."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.decision.confirm_view import CONFIRM_MODAL, challenge_of, confirm_modal, typed_phrase
from bot.decision.views import (
    ACTION_CONFIRM,
    APPROVE,
    CHANGE_LEVEL,
    DECLINE,
    REOPEN,
    ApprovalView,
    LevelChoice,
    RoleLine,
    VoteLine,
    approval_blocks,
    approval_text,
    decline_modal,
    declined_reason,
)
from tests.support.blockkit import schema_errors

T0 = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)


def rollback_view(status: str, **kw: Any) -> ApprovalView:
    fields: dict[str, Any] = dict(
        request_id="apr-1", subject="rollback", title="Urgent", policy_kind="all_of",
        needs="Technical Lead + DevOps Lead", status=status, now=T0 + timedelta(minutes=1), requested_by="U500OC01",
        roles=(RoleLine("technical_lead", "Technical Lead", ("U100TL01", "U100TL02"), "U100TL01"),
               RoleLine("devops_lead", "DevOps Lead", ("U200DO01", "U200DO02"))),
        votes=(VoteLine("U100TL01", "approve", ("Technical Lead",), T0 + timedelta(seconds=40)),),
        missing=("DevOps Lead",), deadline=T0 + timedelta(minutes=5), description="Urgent Rollback Triggers",
        levels=(LevelChoice("immediate", "Immediate", 2, "Technical Lead OR DevOps Lead"),
                LevelChoice("consideration", "Consideration", 10, "Technical Lead + Product Manager")))
    fields.update(kw)
    return ApprovalView(**fields)


def elements(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_pending_rollback_decision_shows_policy_holders_deadline_and_all_controls() -> None:
    blocks = [b.to_dict() for b in approval_blocks(rollback_view("pending"))]
    assert schema_errors(blocks) == []
    text = str(blocks)
    assert "Technical Lead + DevOps Lead" in text and "<@U200DO02>" in text and "09:05:00 UTC" in text
    assert "4m00s left" in text and "Waiting for: DevOps Lead" in text
    assert elements(blocks) == [APPROVE, DECLINE, CHANGE_LEVEL]


@pytest.mark.parametrize("status", ["approved", "declined"])
def test_decided_rollback_decision_has_no_buttons(status: str) -> None:
    view = rollback_view(status, decided_at=T0 + timedelta(minutes=2), decided_by=("U100TL01", "U200DO01"),
                         reason="error rate recovered" if status == "declined" else None, missing=())
    blocks = [b.to_dict() for b in approval_blocks(view)]
    assert schema_errors(blocks) == []
    assert elements(blocks) == []
    assert f"Rollback {status}" in str(blocks) and status in approval_text(view)


def test_overdue_rollback_decision_turns_red_says_how_late_and_keeps_approve_and_decline_live() -> None:
    view = rollback_view("pending", now=T0 + timedelta(minutes=7, seconds=30))  # due at 09:05
    blocks = [b.to_dict() for b in approval_blocks(view)]
    assert schema_errors(blocks) == []
    assert elements(blocks) == [APPROVE, DECLINE, CHANGE_LEVEL], "a deadline never takes the vote away"
    assert REOPEN not in elements(blocks)
    shown = str(blocks)
    assert "🔴" in shown and "OVERDUE" in shown
    assert "Overdue by 2m30s" in shown
    assert "09:05" in shown and "still counts" in shown
    assert approval_text(view).endswith("OVERDUE, needs Technical Lead + DevOps Lead")


def test_a_decision_before_its_deadline_shows_time_left_not_overdue() -> None:
    blocks = [b.to_dict() for b in approval_blocks(rollback_view("pending"))]
    assert "OVERDUE" not in str(blocks) and "4m00s left" in str(blocks)
    assert "🔴" not in str(blocks)


def test_action_approval_asks_for_the_typed_phrase_until_it_is_typed() -> None:
    view = rollback_view("pending", subject="execution:ex-1", title="Database rollback", deadline=None, levels=(),
                         details=("`restore_point`: `backup-20261127-0300`",),
                         confirmation_prompt="Type the restore point to confirm.", missing=())
    blocks = [b.to_dict() for b in approval_blocks(view)]
    assert schema_errors(blocks) == []
    assert ACTION_CONFIRM in elements(blocks) and "backup-20261127-0300" in str(blocks)
    typed = rollback_view("pending", subject="execution:ex-1", title="Database rollback", deadline=None, levels=(),
                          confirmation_prompt="Type it.", confirmed_by="U100TL01", confirmed_at=T0)
    blocks = [b.to_dict() for b in approval_blocks(typed)]
    assert ACTION_CONFIRM not in elements(blocks) and "typed by <@U100TL01>" in str(blocks)


def test_modals_are_valid_and_their_values_read_back() -> None:
    confirm = confirm_modal("cc-1", "Database rollback", "Type the restore point.", "backup-1", T0).to_dict()
    assert confirm["callback_id"] == CONFIRM_MODAL and schema_errors(confirm["blocks"]) == []
    assert challenge_of(confirm["private_metadata"]) == "cc-1" and challenge_of("not json") == ""
    assert typed_phrase({"phrase": {"phrase": {"type": "plain_text_input", "value": "backup-1"}}}) == "backup-1"
    decline = decline_modal("apr-1", "Decline the rollback").to_dict()
    assert schema_errors(decline["blocks"]) == []
    assert declined_reason({"reason": {"reason": {"value": "  metrics recovered "}}}) == "metrics recovered"
    assert declined_reason({}) == ""
