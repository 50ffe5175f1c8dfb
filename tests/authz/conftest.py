"""The authorization tests compare what each click or form changed, in Slack and in the database, right after
Slack had its answer. So here the work always finishes before the answer, however loaded the machine: past the
budgets, a form's refusal would go by DM and a tick would finish after the ack, and that would read as a change.
The budgets have their own tests (tests/handlers/test_submit_within_ack.py, tests/checklists)."""

from __future__ import annotations

import pytest

from handlers import checklists, interaction

UNBOUNDED = 3600.0


@pytest.fixture(autouse=True)
def work_finishes_before_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interaction, "SUBMIT_WITHIN_ACK_SECONDS", UNBOUNDED)
    monkeypatch.setattr(checklists, "TICK_STORED_WITHIN_SECONDS", UNBOUNDED)
    monkeypatch.setattr(checklists, "TICK_RENDERED_WITHIN_SECONDS", UNBOUNDED)
