"""The default runbook carries the seed procedure whole: every number below is read from the seed markdown
(../shared/seed/emergency-rollback-procedures.md) and compared with the loaded runbook, texts verbatim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Runbook
from tests.runbook.seed import SEED, Seed, parse_seed

pytestmark = pytest.mark.skipif(not SEED.exists(), reason=f"seed procedure not found at {SEED}")


@pytest.fixture(scope="module")
def seed() -> Seed:
    return parse_seed()


@pytest.fixture(scope="module")
def rb() -> Runbook:
    return load_runbook(DEFAULT_RUNBOOK)


def test_seed_parser_reads_the_procedure_it_should(seed: Seed) -> None:
    """Guards against a vacuous comparison: the parser finds the seed's known shape (5 phases, 10 steps...)."""
    assert len(seed.phases) == 5
    assert sum(len(p.steps) for p in seed.phases) == 10
    assert sum(len(items) for p in seed.phases for s in p.steps for _, items in s.tasks) == 108
    assert [len(s.steps) for s in seed.scenarios] == [5, 5, 4, 5]
    assert [len(v) for v in seed.validation.values()] == [8, 8, 5]
    assert len(seed.management) == 4
    assert sum(len(v) for v in seed.triggers.values()) == 15
    assert len(seed.scripts) == 13


def test_counts_match_the_seed(seed: Seed, rb: Runbook) -> None:
    steps = rb.all_steps()
    assert len(rb.phases) == len(seed.phases)
    assert len(steps) == sum(len(p.steps) for p in seed.phases)
    assert sum(len(t.items) for s in steps for t in s.tasks) == sum(
        len(items) for p in seed.phases for s in p.steps for _, items in s.tasks)
    assert len(rb.scenarios) == len(seed.scenarios)
    assert [len(s.steps) for s in rb.scenarios] == [len(s.steps) for s in seed.scenarios]
    assert len(rb.escalation.management) == len(seed.management)
    assert len(rb.triggers) == sum(len(v) for v in seed.triggers.values())
    assert [len(v.items) for v in rb.validation] == [len(v) for v in seed.validation.values()]


def test_phases_and_steps_match_titles_owners_windows_and_items(seed: Seed, rb: Runbook) -> None:
    for ours, theirs in zip(rb.phases, seed.phases, strict=True):
        assert (ours.number, ours.title, (ours.window.start, ours.window.end)) == (
            theirs.number, theirs.title, theirs.window)
        for step, seed_step in zip(ours.steps, theirs.steps, strict=True):
            assert (step.number, step.title) == (seed_step.number, seed_step.title)
            assert rb.role(step.owner).title == seed_step.owner
            assert (step.window.start, step.window.end) == seed_step.window
            assert [(t.title, t.items) for t in step.tasks] == seed_step.tasks


def test_decision_step_and_replaced_phase(rb: Runbook) -> None:
    assert [s.title for s in rb.all_steps() if s.kind == "decision"] == ["Rollback Decision"]
    assert [p.title for p in rb.phases if p.replaced_by_scenario] == ["Rollback Execution"]


def test_objectives_match_the_seed(rb: Runbook) -> None:
    text = SEED.read_text(encoding="utf-8")
    rto = float(re.search(r"\(RTO\)\*\*: (\d+) minutes", text).group(1))
    rpo = float(re.search(r"\(RPO\)\*\*: (\d+) minutes", text).group(1))
    low, high = map(float, re.search(r"within (\d+)-(\d+) minutes", text).groups())
    assert (rb.objectives.rto_minutes, rb.objectives.rpo_minutes) == (rto, rpo)
    assert (rb.objectives.target_minutes.start, rb.objectives.target_minutes.end) == (low, high)
    assert rb.objectives.statement in text


def test_triggers_by_level_verbatim(seed: Seed, rb: Runbook) -> None:
    for level, expected in seed.triggers.items():
        assert [(t.title, t.description) for t in rb.triggers if t.level == level] == expected


def test_measurable_triggers_carry_their_thresholds(rb: Runbook) -> None:
    def cond(trigger_id: str) -> tuple:
        c = rb.trigger(trigger_id).condition
        assert c is not None, trigger_id
        return c.metric, c.op.value, c.threshold, c.upper, c.unit, c.for_minutes

    assert cond("payment_failure") == ("payment_failure_rate", ">", 2, None, "%", 0)
    assert cond("high_error_rate") == ("error_rate", ">", 1, None, "%", 10)
    assert cond("moderate_error_rate") == ("error_rate", "between", 0.5, 1, "%", 20)
    assert cond("performance_degradation")[1:] == (">", 500, None, "ms", 15)
    assert cond("database_performance")[1:4] == (">", 200, None)
    assert cond("resource_exhaustion")[1:3] == (">", 95)
    assert cond("system_downtime")[1:3] == (">", 5)
    assert cond("user_experience_issues")[1:3] == (">", 50)
    assert rb.trigger("payment_failure").scenario == "payment_system"
    assert "PaymentFailureRateHigh" in rb.trigger("payment_failure").match.alertnames


def test_authorization_matrix(seed: Seed, rb: Runbook) -> None:
    for level, (title, authority, minutes) in zip(rb.levels, seed.matrix, strict=True):
        joiner = " OR " if " OR " in authority else " + "
        titles = [rb.role(r).title for r in level.approval.roles]
        assert (level.title, joiner.join(titles), level.decision_minutes) == (title, authority, minutes)
        assert bool(level.approval.any_of) == (joiner == " OR ")


def test_scenarios_verbatim(seed: Seed, rb: Runbook) -> None:
    for ours, theirs in zip(rb.scenarios, seed.scenarios, strict=True):
        assert (ours.title, ours.trigger, ours.execution_minutes) == (theirs.title, theirs.trigger, theirs.minutes)
        assert [(s.title, s.minutes) for s in ours.steps] == theirs.steps


def test_every_script_with_every_flag(seed: Seed, rb: Runbook) -> None:
    by_script = {Path(a.script).name: a for a in rb.actions if a.script}
    for script, flags in seed.scripts.items():
        assert script in by_script, f"no action runs {script}"
        assert [t for t in by_script[script].args if t.startswith("--")] == flags


def test_validation_checklists_verbatim(seed: Seed, rb: Runbook) -> None:
    assert [c.title for c in rb.validation] == list(seed.validation)
    for checklist, expected in zip(rb.validation, seed.validation.values(), strict=True):
        assert [(i.label, i.text) for i in checklist.items] == expected


def test_contacts_and_escalation(seed: Seed, rb: Runbook) -> None:
    assert [(r.title, r.response_minutes) for r in rb.roles if r.responder] == seed.response_team
    assert [(r.level, rb.role(r.role).title, r.minutes) for r in rb.escalation.management] == seed.management
    assert [(c.service, c.contact, c.sla, c.escalation) for c in rb.escalation.external] == seed.external
    hours = {"1 hour": 60, "2 hours": 120, "4 hours": 240}
    assert [c.sla_minutes for c in rb.escalation.external] == [hours[c.sla] for c in rb.escalation.external]


def test_post_rollback_follow_ups(seed: Seed, rb: Runbook) -> None:
    assert [f.title for f in rb.follow_ups] == list(seed.follow_ups)
    for follow_up, groups in zip(rb.follow_ups, seed.follow_ups.values(), strict=True):
        assert [(g.title, g.items) for g in follow_up.groups] == groups
    assert [f.within_minutes for f in rb.follow_ups] == [60, 24 * 60, 7 * 24 * 60]


def test_drills(seed: Seed, rb: Runbook) -> None:
    assert [d.title for d in rb.drills] == list(seed.drills)
    assert [d.items for d in rb.drills] == list(seed.drills.values())
    assert [(d.cron, d.duration_minutes, d.environment, d.kind) for d in rb.drills] == [
        ("0 10 1 */3 *", 240, "Staging", "full"), ("0 10 15 * *", 60, "Staging", "partial")]


def test_summary_sections(seed: Seed, rb: Runbook) -> None:
    assert [(m.label, m.target) for m in rb.success_metrics] == seed.success_metrics
    assert [(i.label, i.text) for i in rb.key_success_factors] == seed.key_success_factors
    assert [(i.label, i.text) for i in rb.critical_points] == seed.critical_points


def test_document_information(rb: Runbook) -> None:
    text = SEED.read_text(encoding="utf-8")
    field = {k: v.strip() for k, v in re.findall(r"\*\*(Document Version|Next Review|Document Owner)\*\*: (.*)", text)}
    assert rb.document.version == field["Document Version"]
    assert rb.document.next_review == field["Next Review"]
    assert rb.role(rb.document.owner).title == field["Document Owner"]
