"""What a click or form changed is read right after Slack's answer: the work must be done by then (see the fixture)."""

from tests.support.budgets import work_finishes_before_the_answer

__all__ = ["work_finishes_before_the_answer"]
