"""Tests that compare what a click or a form changed right after Slack had its answer need the work finished by
then, however loaded the machine: past the handlers' budgets a form's refusal goes by DM instead of onto the form,
and a tick finishes after its ack. Their conftest uses this fixture; the budgets have their own tests
(tests/handlers/test_submit_within_ack.py, tests/checklists)."""

from __future__ import annotations

import pytest

from handlers import checklists, interaction

UNBOUNDED = 3600.0


@pytest.fixture(autouse=True)
def work_finishes_before_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(interaction, "SUBMIT_WITHIN_ACK_SECONDS", UNBOUNDED)
    monkeypatch.setattr(checklists, "TICK_STORED_WITHIN_SECONDS", UNBOUNDED)
    monkeypatch.setattr(checklists, "TICK_RENDERED_WITHIN_SECONDS", UNBOUNDED)
