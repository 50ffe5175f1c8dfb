"""The incident history, the one model behind the report, the drill scorecard and the comms' facts."""

from __future__ import annotations

from bot.reports.scorecard import score
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from tests.comms.test_templates import CASES, T0, _at, history_at


def test_timings_run_from_the_alert_s_start_and_the_data_facts_follow_what_ran() -> None:
    runbook = load_runbook(DEFAULT_RUNBOOK)
    by_name = {c.name: c for c in CASES}
    h = history_at(runbook, by_name["database_only"], _at(41))
    assert h.title == "Data Corruption", "the trigger's title, not the raw alert name"
    assert h.timing("Time to detect").minutes == 3.0  # the alert started three minutes before the declaration
    assert h.timing("Time to decide").minutes == 4.0 and h.timing("Time to decide").met is False  # Immediate: 2 min
    assert h.timing("Time to mitigate").minutes == 26.0 and h.timing("Time to mitigate").met is True
    assert h.timing("Time to resolve").minutes == 40.0
    assert h.timing("Time to acknowledge").minutes is None, "nobody acknowledged a page"
    assert h.data.restored and not h.data.preserved and h.data.restore_point == "latest-stable"
    assert next(m for m in h.success if m.label == "Data Loss").met is False

    kept = history_at(runbook, by_name["payment_system"], _at(41))
    assert kept.data.preserved and kept.data.snapshot_at == _at(7)
    failed = history_at(runbook, by_name["frontend_only"], _at(41))
    assert failed.data.snapshot_failed and not failed.data.preserved

    early = history_at(runbook, by_name["payment_system"], T0)
    assert early.decided_at is None and early.timing("Time to decide").minutes is None
    assert early.timing("Time to decide").met is None, "not measured is not a miss"


def test_the_drill_scorecard_is_the_history_s_plan() -> None:
    runbook = load_runbook(DEFAULT_RUNBOOK)
    h = history_at(runbook, CASES[0], _at(41))
    assert h.plan == score(h.incident, h.procedure, {}, None, h.resolved_at or _at(41))
