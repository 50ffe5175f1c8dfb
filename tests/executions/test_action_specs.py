"""Runbook actions become exact argvs: typed values checked against their patterns and passed as whole arguments,
the incident's version used for version parameters, secrets masked, drills on staging arguments, check URLs
overridable; an injected `; rm -rf` or `$(...)` is refused before anything is recorded or run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actions.check import CheckSpec
from actions.shell import ShellSpec
from bot.executions.specs import ActionInputError, check_url, prepare, scripts_base, stage_spec
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Action, Param

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
BASE = scripts_base(DEFAULT_RUNBOOK, RUNBOOK)
NOW = datetime(2026, 11, 28, 3, 12, 45, tzinfo=UTC)


def test_scripts_resolve_relative_to_the_runbooks_scripts_dir() -> None:
    assert (BASE / "launch" / "scripts" / "rollback-application.sh").is_file()
    prepared = prepare(RUNBOOK.action("quick_health_check"), BASE, NOW)
    assert isinstance(prepared.spec, ShellSpec)
    assert prepared.spec.cwd == BASE and prepared.argv == ["./launch/scripts/quick-health-check.sh"]


def test_the_incident_version_fills_version_parameters_as_one_argument() -> None:
    prepared = prepare(RUNBOOK.action("rollback_application"), BASE, NOW, incident_version="v2.3.0")
    assert prepared.argv == ["./launch/scripts/rollback-application.sh", "--version", "v2.3.0", "--confirm-rollback",
                             "--preserve-data"]
    assert prepared.public == {"version": "v2.3.0"}


def test_defaults_come_from_files_and_the_clock() -> None:
    rollback = prepare(RUNBOOK.action("rollback_application"), BASE, NOW)
    assert rollback.values["version"] == (BASE / "launch" / "last-stable-version.txt").read_text().strip()
    snapshot = prepare(RUNBOOK.action("emergency_db_snapshot"), BASE, NOW)
    assert snapshot.argv[-2:] == ["--timestamp", "20261128_031245"]


@pytest.mark.parametrize("version", ["v2.3.1; rm -rf /", "$(touch /tmp/rollbot-pwned)", "v2.3.1 --force",
                                     "`id`", "v2.3.1\nrm -rf /", "../../etc/passwd"])
def test_injected_versions_are_refused_naming_the_parameter(version: str) -> None:
    for source in ({"typed": {"version": version}}, {"incident_version": version}):
        with pytest.raises(ActionInputError) as caught:
            prepare(RUNBOOK.action("rollback_application"), BASE, NOW, **source)  # type: ignore[arg-type]
        # Named in plain words (the label and what was wrong), never with the regex
        assert caught.value.param == "version" and str(caught.value).startswith("Version: ")
        assert "expected form" in str(caught.value) and "^" not in str(caught.value)


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(ActionInputError, match="no such parameter"):
        prepare(RUNBOOK.action("quick_health_check"), BASE, NOW, typed={"extra": "x"})


def test_a_drill_uses_the_staging_arguments() -> None:
    action = RUNBOOK.action("complete_system_rollback")
    live = prepare(action, BASE, NOW, incident_version="v2.3.1")
    drill = prepare(action, BASE, NOW, incident_version="v2.3.1", drill=True)
    assert live.argv[1:3] == ["--environment", "production"]
    assert drill.argv[1:3] == ["--environment", "staging"]


def test_secret_parameters_are_masked_in_what_is_stored_and_shown() -> None:
    action = Action(id="deploy_with_token", title="Deploy", script="launch/scripts/rollback-application.sh",
                    args=["--version", "{version}", "--token", "{token}"],
                    params=[Param(name="version", pattern=r"^v\d+\.\d+\.\d+$"), Param(name="token", secret=True)])
    prepared = prepare(action, BASE, NOW, typed={"version": "v1.2.3", "token": "hunter2-very-secret"})
    assert prepared.public == {"version": "v1.2.3", "token": "[REDACTED]"}
    assert "hunter2-very-secret" not in " ".join(prepared.argv)
    assert prepared.typed == {"version": "v1.2.3"}  # a secret typed value is never kept for a retry
    assert isinstance(prepared.spec, ShellSpec) and "hunter2-very-secret" in prepared.spec.argv  # but it does run


def test_a_script_outside_the_scripts_dir_is_refused() -> None:
    action = Action(id="escape", title="Escape", script="../../../bin/sh")
    with pytest.raises(ActionInputError, match="outside"):
        prepare(action, BASE, NOW)


def test_traffic_stages_set_the_stage_parameter_and_check_its_pattern() -> None:
    action = RUNBOOK.action("gradual_traffic_restore")
    prepared = prepare(action, BASE, NOW)
    spec, argv = stage_spec(prepared, BASE, 75)
    assert argv == ["./launch/scripts/gradual-traffic-restore.sh", "--percentage", "75"] and spec.argv == tuple(argv)
    with pytest.raises(ActionInputError):
        stage_spec(prepared, BASE, 150)


def test_a_check_url_can_be_overridden_per_action_by_environment_variable() -> None:
    action = RUNBOOK.action("traffic_health_check")
    assert check_url(action, {}) == action.url
    env = {"ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK": "http://127.0.0.1:9/health"}
    assert check_url(action, env) == "http://127.0.0.1:9/health"
    prepared = prepare(action, BASE, NOW, env=env)
    assert isinstance(prepared.spec, CheckSpec) and prepared.spec.url == "http://127.0.0.1:9/health"
    assert prepared.argv == ["GET", "http://127.0.0.1:9/health"]


def test_the_script_knobs_pass_through_and_the_bots_secrets_do_not() -> None:
    from actions.shell import build_env

    prepared = prepare(RUNBOOK.action("quick_health_check"), BASE, NOW, env_extra={"ROLLBOT_INCIDENT_ID": "inc-1"})
    assert isinstance(prepared.spec, ShellSpec)
    parent = {"PATH": "/usr/bin", "ROLLBOT_SCRIPT_SPEED": "50", "ROLLBOT_FAIL": "x", "ROLLBOT_HANG": "y",
              "SLACK_BOT_TOKEN": "xoxb-secret", "DATABASE_URL": "postgresql://u:p@h/db"}
    env = build_env(prepared.spec.env, parent=parent, allowlist=prepared.spec.env_allowlist)
    assert {"ROLLBOT_SCRIPT_SPEED", "ROLLBOT_FAIL", "ROLLBOT_HANG", "ROLLBOT_INCIDENT_ID"} <= set(env)
    assert "SLACK_BOT_TOKEN" not in env and "DATABASE_URL" not in env
