"""Parameters: user-typed values are checked against their definitions; values become whole arguments."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from actions.params import (
    ParamDef,
    ParamError,
    TemplateError,
    check_argv_template,
    check_value,
    public_params,
    render_argv,
    resolve_params,
    secret_values,
)
from actions.redact import Redactor
from tests.actions.conftest import LAUNCH_DIR

NOW = datetime(2026, 11, 28, 3, 12, 45, tzinfo=UTC)
VERSION = ParamDef(name="version", pattern=r"v\d+\.\d+\.\d+", default_from_file="last-stable-version.txt")


def test_defaults_come_from_files_and_the_clock() -> None:
    defs = [
        VERSION,
        ParamDef(name="restore_point", default_from_file="last-stable-db-backup.txt", pattern=r"backup-\d{8}-\d{4}"),
        ParamDef(name="timestamp", default_now="%Y%m%d-%H%M%S"),
        ParamDef(name="stages", type="list[int]", default=[25, 50, 75, 100], min=1, max=100),
    ]
    values = resolve_params(defs, {}, LAUNCH_DIR, NOW)
    assert values == {
        "version": "v2.3.1",
        "restore_point": "backup-20261127-0300",
        "timestamp": "20261128-031245",
        "stages": [25, 50, 75, 100],
    }


def test_a_typed_value_overrides_the_default_and_a_blank_one_keeps_it() -> None:
    assert resolve_params([VERSION], {"version": "v1.9.0"}, LAUNCH_DIR, NOW) == {"version": "v1.9.0"}
    assert resolve_params([VERSION], {"version": ""}, LAUNCH_DIR, NOW) == {"version": "v2.3.1"}


@pytest.mark.parametrize(
    "injected",
    ["v1.9.0; rm -rf /tmp/x", "$(touch /tmp/pwned)", "`touch /tmp/pwned`", "v1.9.0\nrm -rf /", "v1.9.0 --force"],
)
def test_injection_attempts_in_a_version_are_refused_by_its_pattern(injected: str) -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([VERSION], {"version": injected}, LAUNCH_DIR, NOW)
    assert err.value.param == "version"
    assert err.value.rule == "pattern"
    assert "version" in str(err.value) and "pattern" in str(err.value)


@pytest.mark.parametrize("value", ["a; rm -rf /tmp/x", "$(touch /tmp/pwned)", "`id`", "x|y", "a&&b", "x>y"])
def test_a_string_without_a_pattern_refuses_shell_metacharacters(value: str) -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([ParamDef(name="note")], {"note": value}, LAUNCH_DIR, NOW)
    assert (err.value.param, err.value.rule) == ("note", "metacharacters")


def test_a_string_without_a_pattern_may_not_look_like_an_option() -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([ParamDef(name="env")], {"env": "--delete-everything"}, LAUNCH_DIR, NOW)
    assert err.value.rule == "option-like"


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([VERSION], {"versoin": "v1.0.0"}, LAUNCH_DIR, NOW)
    assert (err.value.param, err.value.rule) == ("versoin", "unknown")


def test_missing_required_value_is_refused() -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([ParamDef(name="environment")], {}, LAUNCH_DIR, NOW)
    assert (err.value.param, err.value.rule) == ("environment", "required")


def test_a_default_file_that_is_missing_or_breaks_the_pattern_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([VERSION], {}, tmp_path, NOW)
    assert err.value.rule == "default_from_file"
    (tmp_path / "last-stable-version.txt").write_text("latest; rm -rf /\n")
    with pytest.raises(ParamError) as err:
        resolve_params([VERSION], {}, tmp_path, NOW)
    assert err.value.rule == "pattern" and "default" in err.value.message


@pytest.mark.parametrize(
    ("definition", "raw", "expected"),
    [
        (ParamDef(name="n", type="int", min=1, max=100), "50", 50),
        (ParamDef(name="n", type="float"), "2.5", 2.5),
        (ParamDef(name="n", type="bool"), "yes", True),
        (ParamDef(name="n", type="choice", choices=("staging", "production")), "staging", "staging"),
        (ParamDef(name="n", type="list[int]", min=1, max=100), "25, 50,75,100", [25, 50, 75, 100]),
        (ParamDef(name="n", type="integer"), "7", 7),  # the runbook schema's spelling
    ],
)
def test_typed_values_are_parsed(definition: ParamDef, raw: str, expected: object) -> None:
    assert resolve_params([definition], {"n": raw}, LAUNCH_DIR, NOW) == {"n": expected}


@pytest.mark.parametrize(
    ("definition", "raw", "rule"),
    [
        (ParamDef(name="n", type="int", min=1, max=100), "150", "max"),
        (ParamDef(name="n", type="int", min=1, max=100), "0", "min"),
        (ParamDef(name="n", type="int"), "5; reboot", "type"),
        (ParamDef(name="n", type="float"), "1e3$(x)", "type"),
        (ParamDef(name="n", type="bool"), "maybe", "type"),
        (ParamDef(name="n", type="choice", choices=("staging", "production")), "prod", "choices"),
        (ParamDef(name="n", type="list[int]", max=100), "25,,50", "type"),
        (ParamDef(name="n", type="list[int]", max=100), "25,500", "max"),
    ],
)
def test_typed_values_breaking_a_rule_are_refused(definition: ParamDef, raw: str, rule: str) -> None:
    with pytest.raises(ParamError) as err:
        resolve_params([definition], {"n": raw}, LAUNCH_DIR, NOW)
    assert (err.value.param, err.value.rule) == ("n", rule)


def test_render_argv_substitutes_whole_arguments() -> None:
    values = {"version": "v1.9.0", "stages": [25, 50], "dry": False}
    argv = render_argv(["./rollback.sh", "--version", "{version}", "--percentage", "{stages}", "--dry", "{dry}"], values)
    assert argv == ["./rollback.sh", "--version", "v1.9.0", "--percentage", "25,50", "--dry", "false"]


@pytest.mark.parametrize(
    "template",
    [["./x.sh", "--version={version}"], ["./x.sh", "v{version}"], ["./x.sh", "{version}{version}"], ["{ version}"]],
)
def test_templates_that_splice_values_into_text_are_refused(template: list[str]) -> None:
    with pytest.raises(TemplateError):
        check_argv_template(template, ["version"])


def test_an_args_list_may_start_with_a_value() -> None:
    """The runbook keeps the script apart from its args, so args[0] may be a parameter."""
    assert render_argv(["{restore_point}", "--confirm-data-loss"], {"restore_point": "backup-1"}) == [
        "backup-1",
        "--confirm-data-loss",
    ]


def test_template_naming_an_unknown_parameter_is_refused() -> None:
    with pytest.raises(TemplateError):
        render_argv(["./x.sh", "{nope}"], {"version": "v1.0.0"})


def test_secret_parameters_are_masked_for_storage_and_fed_to_the_redactor() -> None:
    defs = [VERSION, ParamDef(name="api_token", secret=True, pattern=r"[A-Za-z0-9]{12,}")]
    values = resolve_params(defs, {"api_token": "s3cr3tT0kenValue"}, LAUNCH_DIR, NOW)
    assert secret_values(defs, values) == ["s3cr3tT0kenValue"]
    stored = public_params(defs, values, Redactor(secret_values(defs, values)))
    assert stored == {"version": "v2.3.1", "api_token": "[REDACTED]"}


def test_from_mapping_accepts_the_runbook_schema_dump() -> None:
    d = ParamDef.from_mapping(
        {
            "name": "pct",
            "type": "int_list",
            "description": "",
            "pattern": None,
            "choices": [],
            "default": "25,50",
            "default_from_file": None,
            "default_now": None,
            "secret": False,
        }
    )
    assert d.type == "list[int]" and d.choices is None
    assert resolve_params([d], {}, LAUNCH_DIR, NOW) == {"pct": [25, 50]}


@pytest.mark.parametrize(("value", "rule"), [("-rf", "option-like"), ("v1\x1b[2J", "control"), ("..", "dot-segment"),
                                             (".", "dot-segment")])
def test_a_pattern_adds_to_the_built_in_checks_and_never_lifts_them(value: str, rule: str) -> None:
    """A runbook pattern that happens to accept anything (.*) still leaves leading dashes, control characters
    and dot segments refused."""
    permissive = ParamDef(name="service", pattern=r"(?s).*")
    with pytest.raises(ParamError) as err:
        check_value(permissive, value)
    assert err.value.rule == rule


@pytest.mark.parametrize("value", ["..", "."])
def test_a_dot_segment_is_refused_without_a_pattern_too(value: str) -> None:
    with pytest.raises(ParamError) as err:
        check_value(ParamDef(name="service"), value)
    assert err.value.rule == "dot-segment"
