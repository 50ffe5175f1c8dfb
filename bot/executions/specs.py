"""From a runbook Action to what actions/ runs: typed parameters resolved and checked, the exact argv, the spec.

Values typed by people (a modal field, the incident's `--version`) are checked against the runbook's
definitions here, before anything is recorded or run; each becomes one whole argv element, never shell text.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from actions.check import CheckSpec
from actions.http import HttpTemplate
from actions.params import (
    ParamDef,
    ParamError,
    ParamValue,
    TemplateError,
    check_value,
    public_params,
    render_argv,
    resolve_params,
)
from actions.params import secret_values as param_secret_values
from actions.prometheus import PrometheusCheckSpec
from actions.redact import Redactor
from actions.runner import ActionSpec
from actions.shell import DEFAULT_ENV_ALLOWLIST, SCRIPT_KNOBS, ShellSpec
from actions.templates import fill
from bot.core import units
from bot.runbook.model import Action, Runbook
from bot.runbook.prometheus import CHECK_URL_ENV_PREFIX, PROMETHEUS_URL_ENV, prometheus_base
from bot.slack.blocks import param_label

# The sample scripts' knobs (speed, forced failure, forced hang) pass through from the bot's environment.
ENV_ALLOWLIST: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST + SCRIPT_KNOBS
VERSION_PARAMS = ("version", "restore_version")  # filled from the incident's `--version` unless typed


class ActionInputError(ValueError):
    """A parameter or template problem, worded for the person who typed the value."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Prepared:
    """One action, ready to run: values checked, secrets known, the argv/request fixed."""

    action: Action
    values: dict[str, ParamValue]
    public: dict[str, ParamValue]  # as stored and shown: secret parameters masked, the rest redacted
    secrets: tuple[str, ...]
    spec: ActionSpec
    argv: list[str]  # shell: the exact argv; http/check: [METHOD, URL]
    typed: dict[str, str] = field(default_factory=dict)  # what people typed (non-secret), for a retry


def scripts_base(runbook_path: Path, runbook: Runbook) -> Path:
    """The directory script paths (and default_from_file paths) are relative to."""
    return (Path(runbook_path).parent / runbook.scripts_dir).resolve()


def param_defs(action: Action) -> list[ParamDef]:
    return [ParamDef.from_mapping(p.model_dump()) for p in action.params]


def check_url(action: Action, env: Mapping[str, str] | None = None) -> str:
    """A check's URL: the runbook's, unless ROLLBOT_CHECK_URL_<ACTION_ID> overrides it (tests, demo, staging)."""
    env = os.environ if env is None else env
    assert action.url is not None
    return env.get(CHECK_URL_ENV_PREFIX + action.id.upper()) or action.url


def check_spec(action: Action, env: Mapping[str, str] | None = None,
               values: Mapping[str, ParamValue] | None = None) -> CheckSpec | PrometheusCheckSpec:
    if action.kind == "prometheus":
        return prometheus_spec(action, values or {}, env)
    if action.kind != "check":
        raise ActionInputError(f"`{action.id}` is not a check action")
    return CheckSpec(url=check_url(action, env), method=action.method, headers=dict(action.headers),
                     expected_status=tuple(action.expect_status), max_latency_ms=action.max_latency_ms,
                     timeout_s=action.timeout_seconds)


def prometheus_spec(action: Action, values: Mapping[str, ParamValue],
                    env: Mapping[str, str] | None = None) -> PrometheusCheckSpec:
    """The query with its parameters (metric names, thresholds' labels) filled; Prometheus from the runbook or env;
    answers converted from the query's unit into the threshold's (seconds into the runbook's milliseconds)."""
    base = prometheus_base(action, env)
    if not base:
        raise ActionInputError(f"`{action.id}` needs a Prometheus: set {PROMETHEUS_URL_ENV} or the action's `url`")
    assert action.query is not None and action.threshold is not None
    defaults = {p.name: p.default for p in action.params if p.default is not None}
    try:
        query = fill(action.query, {**defaults, **values})
    except TemplateError as exc:
        raise ActionInputError(f"the runbook's query for `{action.id}` is broken: {exc}") from None
    try:
        return PrometheusCheckSpec(base_url=base, query=query, op=action.op, threshold=action.threshold,
                                   for_s=action.for_seconds, step_s=action.step_seconds,
                                   timeout_s=min(action.timeout_seconds, 30), headers=dict(action.headers),
                                   name=action.title, unit=units.canonical(action.unit) or "",
                                   scale=units.convert(1.0, action.query_unit, action.unit or None))
    except ValueError as exc:
        raise ActionInputError(f"`{action.id}`: {exc}") from None


def given_values(action: Action, typed: Mapping[str, str], incident_version: str | None) -> dict[str, str]:
    """What the person typed, plus the incident's version for version parameters they left alone."""
    names = {p.name for p in action.params}
    given = dict(typed)  # unknown names are refused by resolve_params
    for name in VERSION_PARAMS:
        if name in names and incident_version and not given.get(name):
            given[name] = incident_version
    return given


def prepare(action: Action, base: Path, now: datetime, *, typed: Mapping[str, str] | None = None,
            incident_version: str | None = None, drill: bool = False, redactor: Redactor | None = None,
            env_extra: Mapping[str, str] | None = None, env: Mapping[str, str] | None = None,
            max_output_bytes: int | None = None) -> Prepared:
    """Check the values and build the spec. Raises ActionInputError naming the parameter at fault."""
    typed = dict(typed or {})
    defs = param_defs(action)
    given = given_values(action, typed, incident_version)
    if action.stage_param and not given.get(action.stage_param) and action.stages:
        given[action.stage_param] = str(action.stages[0])  # the first stage, for the record; stages set their own
    try:
        values = resolve_params(defs, given, base, now)
    except ParamError as exc:
        raise ActionInputError(f"{param_label(exc.param)}: {exc.message}", exc.param) from None
    secrets = tuple(param_secret_values(defs, values))
    redactor = (redactor or Redactor()).with_secrets(secrets)
    public = public_params(defs, values, redactor)
    secret_names = {d.name for d in defs if d.secret}
    kept = {k: v for k, v in typed.items() if k not in secret_names and v != ""}
    spec, argv = _spec(action, base, values, drill=drill, env_extra=env_extra or {}, env=env,
                       max_output_bytes=max_output_bytes)
    return Prepared(action=action, values=values, public=public, secrets=secrets, spec=spec,
                    argv=[redactor.redact(a) for a in argv], typed=kept)


def stage_spec(prepared: Prepared, base: Path, percent: int, *, drill: bool = False,
               env_extra: Mapping[str, str] | None = None, max_output_bytes: int | None = None) -> tuple[ShellSpec, list[str]]:
    """The traffic script for one stage: the prepared values with the stage parameter set to `percent`."""
    action = prepared.action
    assert action.stage_param is not None
    defs = {d.name: d for d in param_defs(action)}
    try:
        value = check_value(defs[action.stage_param], str(percent))
    except ParamError as exc:
        raise ActionInputError(f"stage {percent}%: {exc.message}", exc.param) from None
    values = {**prepared.values, action.stage_param: value}
    spec, argv = _spec(action, base, values, drill=drill, env_extra=env_extra or {}, env=None,
                       max_output_bytes=max_output_bytes)
    assert isinstance(spec, ShellSpec)
    return spec, argv


def _spec(action: Action, base: Path, values: Mapping[str, ParamValue], *, drill: bool,
          env_extra: Mapping[str, str], env: Mapping[str, str] | None,
          max_output_bytes: int | None) -> tuple[ActionSpec, list[str]]:
    try:
        if action.kind == "shell":
            return _shell(action, base, values, drill=drill, env_extra=env_extra, max_output_bytes=max_output_bytes)
        if action.kind == "check":
            spec = check_spec(action, env)
            assert isinstance(spec, CheckSpec)
            return spec, [spec.method, spec.url]
        if action.kind == "prometheus":
            prom = prometheus_spec(action, values, env)
            return prom, ["PromQL", prom.query]
        assert action.url is not None
        http = HttpTemplate(method=action.method, url=action.url, headers=dict(action.headers), text_body=action.body,
                            expected_status=tuple(action.expect_status), timeout_s=action.timeout_seconds,
                            idempotent=action.idempotent).render(values)
        return http, [http.method, http.url]
    except TemplateError as exc:
        raise ActionInputError(f"the runbook's template for `{action.id}` is broken: {exc}") from None


def _shell(action: Action, base: Path, values: Mapping[str, ParamValue], *, drill: bool,
           env_extra: Mapping[str, str], max_output_bytes: int | None) -> tuple[ShellSpec, list[str]]:
    assert action.script is not None
    script = (base / action.script).resolve()
    if not script.is_relative_to(base):
        raise ActionInputError(f"script {action.script} is outside the runbook's scripts directory")
    if not script.is_file():
        raise ActionInputError(f"script {action.script} not found under {base}")
    args = action.staging_args if (drill and action.staging_args is not None) else action.args
    # Relative to cwd (the scripts directory), as the runbook writes it: ./launch/scripts/x.sh
    argv = render_argv([f"./{Path(action.script).as_posix()}", *args], values)
    extra = {"ROLLBOT_ACTION_ID": action.id, **env_extra}
    kwargs = {"max_output_bytes": max_output_bytes} if max_output_bytes else {}
    spec = ShellSpec(tuple(argv), cwd=base, env=extra, timeout_s=action.timeout_seconds,
                     env_allowlist=ENV_ALLOWLIST, **kwargs)
    return spec, argv
