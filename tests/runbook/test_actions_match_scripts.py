"""Every shell action of the default runbook, with its default parameters, is accepted by the sample script it
names (real subprocesses of examples/launch/scripts/, sped up): the runbook's flags are the scripts' flags."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Action

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
SCRIPTS_DIR = (DEFAULT_RUNBOOK.parent / RUNBOOK.scripts_dir).resolve()


def defaults(action: Action) -> dict[str, str]:
    values: dict[str, str] = {}
    for p in action.params:
        if p.default is not None:
            values[p.name] = p.default
        elif p.default_from_file:
            values[p.name] = (SCRIPTS_DIR / p.default_from_file).read_text(encoding="utf-8").strip()
        elif p.default_now:
            values[p.name] = datetime.now(UTC).strftime(p.default_now)
        if p.name in values and p.pattern:
            assert re.fullmatch(p.pattern, values[p.name]), f"{action.id}.{p.name}={values[p.name]!r}"
    return values


def argvs(action: Action, args: list[str]) -> list[list[str]]:
    values = defaults(action)
    stages = [str(s) for s in action.stages] or [None]
    out = []
    for stage in stages:
        if stage is not None and action.stage_param:
            values[action.stage_param] = stage
        argv = [values[t[1:-1]] if t.startswith("{") and t.endswith("}") else t for t in args]
        out.append([str(SCRIPTS_DIR / str(action.script)), *argv])
    return out


CASES = [(a, "args") for a in RUNBOOK.actions if a.kind == "shell"] + [
    (a, "staging_args") for a in RUNBOOK.actions if a.kind == "shell" and a.staging_args is not None]


@pytest.mark.parametrize(("action", "which"), CASES, ids=[f"{a.id}:{w}" for a, w in CASES])
def test_sample_script_accepts_the_runbook_argv(action: Action, which: str) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ROLLBOT_SCRIPT_SPEED": "500"}
    for argv in argvs(action, getattr(action, which)):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=Path(argv[0]).parent)
        assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        assert "DONE" in done.stdout, done.stdout
