"""`rollbot runbook validate` and `rollbot runbook show` on the default runbook: exit codes and what they print."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import runbook as cli
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from tests.runbook.seed import SEED

BROKEN = Path(__file__).parent / "broken"
COVERAGE = DEFAULT_RUNBOOK.parents[2] / "shared" / "checks" / "seed_coverage.py"


def test_validate_default_prints_a_summary_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.validate(None) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out == ("ok: bookedbarber_v2: 5 phases, 10 steps, 108 checklist items, 15 triggers, 4 scenarios, "
                       "19 actions, 21 validation items, 4 escalation rungs\n")


def test_validate_given_path_is_the_same_as_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.validate(str(DEFAULT_RUNBOOK)) == 0
    assert capsys.readouterr().out.startswith("ok: bookedbarber_v2: ")


def test_show_prints_the_whole_procedure(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.show(None) == 0
    text = capsys.readouterr().out
    runbook = load_runbook(DEFAULT_RUNBOOK)
    for phase in runbook.phases:
        assert f"Phase {phase.number}: {phase.title} ({phase.window.start:g}-{phase.window.end:g} min)" in text
        for step in phase.steps:
            owner = runbook.role(step.owner).title
            assert f"Step {step.number}: {step.title} ({step.window.start:g}-{step.window.end:g} min) · owner " \
                   f"{owner}" in text
            for task in step.tasks:
                for item in task.items:
                    assert f"[ ] {item}\n" in text
    for scenario in runbook.scenarios:
        assert f"Scenario {scenario.number}: {scenario.title} · {scenario.execution_minutes:g} min" in text
        for s in scenario.steps:
            assert f"{s.title} ({s.minutes:g} min)" in text
    assert "Technical Lead OR DevOps Lead" in text and "Technical Lead + Product Manager" in text
    assert "Level 4: Board/Investors    within 30 min" in text
    assert "Render     support@render.com" in text
    assert "./launch/scripts/rollback-application.sh --version {version} --confirm-rollback --preserve-data" in text
    assert "Quarterly Rollback Drills: Every 3 months (cron 0 10 1 */3 *)" in text
    assert "Rollback Time: <30 minutes from decision to completion" in text
    # Metric gates: the query in the runbook's own units, and which items it measures.
    assert "$ PromQL histogram_quantile(0.95, sum by (le) (rate({latency_histogram}_bucket[5m]))) < 200 ms for 300s" in text
    assert "[ ] API response times <200ms\n             measured by API p95 latency under 200 ms, when a Prometheus " \
           "is configured" in text
    assert "each followed by traffic_health_check, error_rate_check" in text


def test_show_of_a_broken_runbook_exits_1_with_the_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.show(str(BROKEN / "duplicate_key.yml")) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "title: duplicate key 'title' (line 3)" in out.err


@pytest.mark.skipif(not (SEED.exists() and COVERAGE.exists()), reason="shared seed coverage check not present")
def test_shared_seed_coverage_check_reports_100_percent() -> None:
    done = subprocess.run([sys.executable, str(COVERAGE), str(SEED), str(DEFAULT_RUNBOOK)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert done.stdout.strip().splitlines()[-1].startswith("seed coverage 100.0%")
