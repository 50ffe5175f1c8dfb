"""Communication templates render in a sandbox, strictly: a misspelt variable or an escape attempt fails."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Audience, Moment
from bot.runbook.templating import render_template, sample_context


def test_every_default_template_renders_with_the_incident_facts() -> None:
    runbook = load_runbook(DEFAULT_RUNBOOK)
    context = sample_context()
    assert {t.id for t in runbook.communications} == {
        "maintenance_notice", "status_page_update", "internal_team_notification", "support_team_briefing",
        "executive_briefing", "service_restoration", "apology_explanation",
        # Step 10 of the seed, at the rollback's completion; the status page at each of its moments
        "team_rollback_complete", "executive_update", "support_team_update",
        "status_page_identified", "status_page_monitoring", "status_page_resolved"}
    for template in runbook.communications:
        body = render_template(template.body, context)
        subject = render_template(template.subject, context)
        assert "BookedBarber" in subject + body, template.id
        assert "{{" not in body and "{%" not in body, template.id
        assert template.approver == "product_manager"
    by_id = {t.id: t for t in runbook.communications}
    assert (by_id["maintenance_notice"].audience, by_id["maintenance_notice"].when) == (
        Audience.customers, Moment.traffic_diverted)
    assert (by_id["service_restoration"].when, by_id["apology_explanation"].when) == (
        Moment.rollback_completed, Moment.resolved)
    briefing = render_template(by_id["executive_briefing"].body, context)
    assert "Rollback approved by Tara Lin, Dev Okafor at 09:05 EST (14:05 UTC)." in briefing
    assert "#inc-20250301-payment-failure" in briefing


def test_templates_render_before_a_decision_exists() -> None:
    """At `declared` nothing is decided yet: the engine passes None and the templates still read well."""
    runbook = load_runbook(DEFAULT_RUNBOOK)
    context = sample_context()
    context["decision"] = {"approvers": None, "decided_at": None}
    context["rollback"] = {"version": None, "completed_at": None, "duration_minutes": None}
    for template in runbook.communications:
        text = render_template(template.body, context)  # every template renders ...
        if template.when == Moment.declared:  # ... and those drafted then read well
            assert "None" not in text, template.id
    executive = next(t for t in runbook.communications if t.id == "executive_briefing")
    assert "The rollback decision is pending." in render_template(executive.body, context)


def test_undefined_variable_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UndefinedError):
        render_template("Severity {{ incident.severity }}", sample_context())


def test_sandbox_refuses_reaching_python_internals() -> None:
    with pytest.raises(SecurityError):
        render_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", sample_context())
