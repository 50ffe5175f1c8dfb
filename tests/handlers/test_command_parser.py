"""`/rollback` text parsing: each subcommand, and every kind of bad input refused with a message that says why."""

from __future__ import annotations

import pytest

from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Runbook
from handlers.command_parser import USAGE, CommandError, parse


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return load_runbook(DEFAULT_RUNBOOK)


def test_no_text_opens_the_modal(runbook: Runbook) -> None:
    assert parse("   ", runbook).name == "modal"


def test_start_with_scenario_alias_level_version_and_description(runbook: Runbook) -> None:
    cmd = parse('start payment --level urgent --version v2.3.1 "card declines spiking"', runbook)
    assert (cmd.name, cmd.scenario, cmd.level, cmd.version, cmd.text) == (
        "start", "payment_system", "urgent", "v2.3.1", "card declines spiking")


def test_start_accepts_scenario_number_and_flag_equals_form(runbook: Runbook) -> None:
    cmd = parse("start 2 --level=immediate", runbook)
    assert cmd.scenario == "database_only" and cmd.level == "immediate"


def test_start_with_only_a_description_has_no_scenario(runbook: Runbook) -> None:
    cmd = parse("start checkout is broken", runbook)
    assert cmd.scenario is None and cmd.text == "checkout is broken"


@pytest.mark.parametrize(("text", "says"), [
    ("frobnicate", "Unknown subcommand"),
    ("start --level critical", "Unknown level"),
    ("start --colour red", "Unknown flag"),
    ("start --version", "needs a value"),
    ("start --version 'v1; rm -rf /'", "is not a version"),
    ("start --version $(touch /tmp/pwned)", "is not a version"),
    ("start paymnt", "Unknown scenario"),
    ("status now", "takes no arguments"),
    ("note", "needs the text"),
    ("role technical_lead tara", "Mention the person"),
    ("role wizard <@U100TL01>", "Unknown role"),
    ("resolve please", "takes only"),
    ('start "unterminated', "Could not read"),
])
def test_bad_input_is_refused_with_the_reason(runbook: Runbook, text: str, says: str) -> None:
    with pytest.raises(CommandError, match=says):
        parse(text, runbook)


def test_echoed_input_is_defanged(runbook: Runbook) -> None:
    with pytest.raises(CommandError) as err:
        parse("<!channel>*boom*", runbook)
    assert "<" not in str(err.value) and "*" not in str(err.value)


def test_role_override_and_resolve_override(runbook: Runbook) -> None:
    role = parse("role devops_lead <@U200DO02|dana>", runbook)
    assert (role.role, role.user) == ("devops_lead", "U200DO02")
    assert parse('resolve --override "validated by hand"', runbook).override == "validated by hand"


def test_usage_names_every_subcommand() -> None:
    for sub in ("start", "status", "list", "drill", "contacts", "timeline", "note", "role", "resolve", "help"):
        assert f"/rollback {sub}" in USAGE
