"""The default runbook's shell actions, resolved with their own parameter definitions and defaults, run the
sample scripts successfully: the scripts accept exactly what the runbook passes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from actions.params import ParamDef, render_argv, resolve_params
from actions.result import Outcome
from actions.shell import ShellSpec, run_shell
from bot.runbook.loader import load_runbook
from tests.actions.conftest import FAST, ROOT

RUNBOOK = ROOT / "runbooks" / "bookedbarber-v2.yml"
NOW = datetime(2026, 11, 28, 3, 12, 45, tzinfo=UTC)


async def test_every_shell_action_of_the_default_runbook_runs_its_sample_script() -> None:
    runbook = load_runbook(RUNBOOK)
    base = (RUNBOOK.parent / runbook.scripts_dir).resolve()
    specs: dict[str, ShellSpec] = {}
    for action in runbook.actions:
        if action.kind != "shell":
            continue
        defs = [ParamDef.from_mapping(p.model_dump()) for p in action.params]
        given = {action.stage_param: "50"} if action.stage_param else {}
        values = resolve_params(defs, given, base, NOW)
        argv = render_argv([str(base / action.script), *action.args], values)
        specs[action.id] = ShellSpec(argv, cwd=base, env=FAST)
    assert len(specs) >= 13
    results = await asyncio.gather(*(run_shell(spec) for spec in specs.values()))
    failed = {aid: r.output for aid, r in zip(specs, results, strict=True) if r.outcome is not Outcome.SUCCEEDED}
    assert not failed
    by_id = dict(zip(specs, results, strict=True))
    assert "application at v2.3.1" in by_id["rollback_application"].output
    assert "database restored to backup-20261127-0300" in by_id["rollback_database"].output
    assert "snapshot emergency-20261128_031245 ready" in by_id["emergency_db_snapshot"].output
