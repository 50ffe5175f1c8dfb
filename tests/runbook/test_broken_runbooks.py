"""Broken runbooks are refused, by the loader and by `rollbot runbook validate` (exit 1), with a message that
names the file, the path inside it and what is wrong.

Each case is the default runbook with one realistic mistake, or a small file in tests/runbook/broken/."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import runbook as cli
from bot.runbook.loader import DEFAULT_RUNBOOK, RunbookError, load_runbook

BROKEN = Path(__file__).parent / "broken"
EXAMPLES = DEFAULT_RUNBOOK.parents[1] / "examples"

Data = dict[str, Any]
Mutation = Callable[[Data], tuple[str, str]]  # applies one mistake; returns (path inside the file, message part)


@pytest.fixture(scope="module")
def default_data() -> Data:
    return yaml.safe_load(DEFAULT_RUNBOOK.read_text(encoding="utf-8"))


def write(tmp_path: Path, data: Data) -> Path:
    data = {**data, "scripts_dir": str(EXAMPLES)}  # the copy lives in tmp_path; scripts stay in the repo
    path = tmp_path / "runbook.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def at(items: list[Data], wanted: str) -> int:
    return next(i for i, item in enumerate(items) if item["id"] == wanted)


def step_at(d: Data, step_id: str) -> tuple[int, int]:
    for p, phase in enumerate(d["phases"]):
        for s, step in enumerate(phase["steps"]):
            if step["id"] == step_id:
                return p, s
    raise KeyError(step_id)


# --- the mistakes ---------------------------------------------------------------------------------------


def unknown_top_level_key(d: Data) -> tuple[str, str]:
    d["escalation_ladder"] = []
    return "escalation_ladder", "unknown key (allowed here: name, title"


def unknown_nested_key(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "rollback_decision")
    d["phases"][p]["steps"][s]["tasks"][0]["minuts"] = 2
    return f"phases[{p}].steps[{s}].tasks[0].minuts", "unknown key (allowed here: id, title, minutes"


def step_owned_by_undefined_role(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "system_state_preservation")
    d["phases"][p]["steps"][s]["owner"] = "sre_lead"
    return f"phases[{p}].steps[{s}].owner", "names undefined role 'sre_lead'"


def scenario_naming_undefined_action(d: Data) -> tuple[str, str]:
    c = at(d["scenarios"], "frontend_only")
    d["scenarios"][c]["steps"][1]["action"] = "purge_cdn"
    return f"scenarios[{c}].steps[1].action", "names undefined action 'purge_cdn'"


def window_ends_before_it_starts(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "incident_detection")
    d["phases"][p]["steps"][s]["window"] = {"start": 2, "end": 1}
    return f"phases[{p}].steps[{s}].window", "window ends (1.0) at or before it starts (2.0)"


def step_window_outside_its_phase(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "rollback_preparation")
    d["phases"][p]["steps"][s]["window"] = {"start": 7, "end": 9}
    return f"phases[{p}].steps[{s}].window", "window 7-9 min lies outside its phase's window 5-8 min"


def duplicate_step_id(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "monitoring_validation")
    d["phases"][p]["steps"][s]["id"] = "system_validation"
    return f"phases[{p}].steps[{s}].id", "duplicate step id 'system_validation'"


def broken_jinja_template(d: Data) -> tuple[str, str]:
    c = at(d["communications"], "maintenance_notice")
    d["communications"][c]["body"] = "{{ service.name } is down for maintenance."
    return f"communications[{c}].body", "template syntax error at template line 1"


def template_naming_unknown_variable(d: Data) -> tuple[str, str]:
    c = at(d["communications"], "executive_briefing")
    d["communications"][c]["body"] = "Severity: {{ incident.severity }}"
    return f"communications[{c}].body", "template does not render with the sample context"


def bad_cron(d: Data) -> tuple[str, str]:
    d["drills"][0]["cron"] = "0 10 1 */3"
    return "drills[0].cron", "invalid cron expression '0 10 1 */3'"


def bad_param_regex(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "rollback_application")
    d["actions"][a]["params"][0]["pattern"] = r"^v(\d+\.\d+$"
    return f"actions[{a}].params[0].pattern", "invalid regular expression"


def missing_script(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "reset_cache_cdn")
    d["actions"][a]["script"] = "launch/scripts/reset-cdn.sh"
    return f"actions[{a}].script", "script not found: "


def policy_naming_undefined_role(d: Data) -> tuple[str, str]:
    lv = at(d["levels"], "urgent")
    d["levels"][lv]["approval"] = {"all_of": ["technical_lead", "release_manager"]}
    return f"levels[{lv}].approval.all_of[1]", "names undefined role 'release_manager'"


def action_policy_naming_undefined_role(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "rollback_database")
    d["actions"][a]["approval"] = {"all_of": ["technical_lead", "dba"]}
    return f"actions[{a}].approval.all_of[1]", "names undefined role 'dba'"


def trigger_naming_undefined_level(d: Data) -> tuple[str, str]:
    t = at(d["triggers"], "payment_failure")
    d["triggers"][t]["level"] = "critical"
    return f"triggers[{t}].level", "names undefined level 'critical'"


def trigger_naming_undefined_scenario(d: Data) -> tuple[str, str]:
    t = at(d["triggers"], "payment_failure")
    d["triggers"][t]["scenario"] = "payments"
    return f"triggers[{t}].scenario", "names undefined scenario 'payments'"


def check_naming_a_shell_action(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "gradual_traffic_restore")
    d["actions"][a]["check"] = "quick_health_check"
    return f"actions[{a}].check", "kind shell, not a check"


def escalation_rung_undefined_role(d: Data) -> tuple[str, str]:
    d["escalation"]["management"][3]["role"] = "investors"
    return "escalation.management[3].role", "names undefined role 'investors'"


def two_phases_replaced_by_scenario(d: Data) -> tuple[str, str]:
    d["phases"][1]["replaced_by_scenario"] = True
    return "phases", "exactly one phase has replaced_by_scenario: true (found 2)"


def step_numbers_going_backwards(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "infrastructure_rollback")
    d["phases"][p]["steps"][s]["number"] = 5
    return f"phases[{p}].steps[{s}].number", "step numbers must increase (5 after 5)"


def destructive_action_without_confirmation(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "rollback_database")
    del d["actions"][a]["confirmation"]
    return f"actions[{a}]", "a destructive action needs its own `approval` and a `confirmation`"


def wrong_type(d: Data) -> tuple[str, str]:
    d["levels"][0]["decision_minutes"] = "soon"
    return "levels[0].decision_minutes", "Input should be a valid number"


def missing_required_key(d: Data) -> tuple[str, str]:
    del d["objectives"]["rto_minutes"]
    return "objectives.rto_minutes", "required key is missing"


def default_not_matching_pattern(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "database_rollback")
    d["actions"][a]["params"][0]["default"] = "latest stable; rm -rf /"
    return f"actions[{a}].params[0].default", "does not match the pattern"


def scenario_steps_longer_than_its_time(d: Data) -> tuple[str, str]:
    c = at(d["scenarios"], "payment_system")
    d["scenarios"][c]["steps"][2]["minutes"] = 10
    return f"scenarios[{c}]", "its steps take 18 min, over its execution time 12"


def drill_naming_undefined_participant(d: Data) -> tuple[str, str]:
    d["drills"][1]["participants"].append("intern")
    return f"drills[1].participants[{len(d['drills'][1]['participants']) - 1}]", "names undefined role 'intern'"


def no_decision_step(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "rollback_decision")
    del d["phases"][p]["steps"][s]["kind"]
    return "phases", "exactly one step must have kind: decision (found 0"


def script_escaping_scripts_dir(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "quick_health_check")
    d["actions"][a]["script"] = "../../bin/sh"
    return f"actions[{a}].script", "must be a path inside scripts_dir"


def alertname_under_two_triggers(d: Data) -> tuple[str, str]:
    t = at(d["triggers"], "moderate_error_rate")
    d["triggers"][t]["match"]["alertnames"].append("highErrorRate")
    n = len(d["triggers"][t]["match"]["alertnames"]) - 1
    return f"triggers[{t}].match.alertnames[{n}]", "alert 'highErrorRate' already maps to 'high_error_rate'"


def gate_naming_an_item_the_task_lacks(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "system_validation")
    t = next(i for i, task in enumerate(d["phases"][p]["steps"][s]["tasks"]) if task.get("gates"))
    d["phases"][p]["steps"][s]["tasks"][t]["gates"][0]["item"] = "API response times under 200ms"
    return f"phases[{p}].steps[{s}].tasks[{t}]", "is not one of this task's items"


def gate_naming_a_shell_action(d: Data) -> tuple[str, str]:
    p, s = step_at(d, "system_validation")
    t = next(i for i, task in enumerate(d["phases"][p]["steps"][s]["tasks"]) if task.get("gates"))
    d["phases"][p]["steps"][s]["tasks"][t]["gates"][0]["action"] = "quick_health_check"
    return f"phases[{p}].steps[{s}].tasks[{t}].gates[0].action", "kind shell, not prometheus"


def stage_gate_naming_an_http_check(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "gradual_traffic_restore")
    d["actions"][a]["stage_gates"] = ["traffic_health_check"]
    return f"actions[{a}].stage_gates[0]", "kind check, not prometheus"


def threshold_unit_the_query_unit_cannot_become(d: Data) -> tuple[str, str]:
    a = at(d["actions"], "error_rate_check")
    d["actions"][a]["query_unit"] = "s"
    return f"actions[{a}]", "query_unit 's' cannot be converted to the unit '%'"


MUTATIONS: list[Mutation] = [
    unknown_top_level_key, unknown_nested_key, step_owned_by_undefined_role, scenario_naming_undefined_action,
    window_ends_before_it_starts, step_window_outside_its_phase, duplicate_step_id, broken_jinja_template,
    template_naming_unknown_variable, bad_cron, bad_param_regex, missing_script, policy_naming_undefined_role,
    action_policy_naming_undefined_role, trigger_naming_undefined_level, trigger_naming_undefined_scenario,
    check_naming_a_shell_action, escalation_rung_undefined_role, two_phases_replaced_by_scenario,
    step_numbers_going_backwards, destructive_action_without_confirmation, wrong_type, missing_required_key,
    default_not_matching_pattern, scenario_steps_longer_than_its_time, drill_naming_undefined_participant,
    no_decision_step, script_escaping_scripts_dir, alertname_under_two_triggers, gate_naming_an_item_the_task_lacks,
    gate_naming_a_shell_action, stage_gate_naming_an_http_check, threshold_unit_the_query_unit_cannot_become,
]


def test_the_unmodified_copy_is_accepted(default_data: Data, tmp_path: Path) -> None:
    """The baseline: the same round trip with no mistake loads, so each refusal below is the mistake's doing."""
    runbook = load_runbook(write(tmp_path, copy.deepcopy(default_data)))
    assert runbook.name == "bookedbarber_v2"


@pytest.mark.parametrize("mutate", MUTATIONS, ids=lambda m: m.__name__)
def test_mistake_is_refused_with_file_path_and_reason(
    mutate: Mutation, default_data: Data, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(default_data)
    inner_path, reason = mutate(data)
    path = write(tmp_path, data)

    with pytest.raises(RunbookError) as refused:
        load_runbook(path)
    prefix = f"{path}: {inner_path}: "
    matching = [p for p in refused.value.problems if p.startswith(prefix) and reason in p]
    assert matching, f"no problem starts with {prefix!r} and mentions {reason!r}: {refused.value.problems}"

    assert cli.validate(str(path)) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert matching[0] in out.err.splitlines()


FILES = [
    ("syntax.yml", "line 5, column 5: YAML syntax error: while parsing a flow mapping; "),
    ("empty.yml", "the file is empty"),
    ("comment_only.yml", "the file is empty"),
    ("list_top_level.yml", "(top level): expected a mapping of runbook keys, found a list"),
    ("duplicate_key.yml", "title: duplicate key 'title' (line 3)"),
]


@pytest.mark.parametrize(("name", "reason"), FILES, ids=[f for f, _ in FILES])
def test_malformed_file_is_refused(name: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BROKEN / name
    with pytest.raises(RunbookError) as refused:
        load_runbook(path)
    assert refused.value.problems == [p for p in refused.value.problems if p.startswith(f"{path}: ")]
    assert any(reason in p for p in refused.value.problems), refused.value.problems
    assert cli.validate(str(path)) == 1
    assert reason in capsys.readouterr().err


def test_missing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nowhere.yml"
    assert cli.validate(str(path)) == 1
    assert f"{path}: cannot read the file" in capsys.readouterr().err


def test_every_problem_is_reported_not_only_the_first(default_data: Data, tmp_path: Path) -> None:
    data = copy.deepcopy(default_data)
    found = [m(data)[0] for m in (step_owned_by_undefined_role, missing_script, policy_naming_undefined_role)]
    with pytest.raises(RunbookError) as refused:
        load_runbook(write(tmp_path, data))
    for inner in found:
        assert any(f": {inner}: " in p for p in refused.value.problems), inner


def test_problem_points_at_the_line_in_the_file(tmp_path: Path) -> None:
    """The original file's text, one word changed: the error names the line where that word is."""
    text = DEFAULT_RUNBOOK.read_text(encoding="utf-8").replace(
        "scripts_dir: ../examples", f"scripts_dir: {EXAMPLES}")
    lines = text.splitlines()
    line_no = next(i for i, line in enumerate(lines, start=1) if line.strip() == "owner: performance_lead")
    lines[line_no - 1] = lines[line_no - 1].replace("performance_lead", "perf_lead")
    path = tmp_path / "edited.yml"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(RunbookError) as refused:
        load_runbook(path)
    assert len(refused.value.problems) == 1
    assert refused.value.problems[0].endswith(f"names undefined role 'perf_lead' (roles: board, ceo, cto, database_admin,"
                                              f" devops_lead, on_call_engineer, performance_lead, product_manager,"
                                              f" qa_lead, technical_lead) (line {line_no})")
