"""`rollbot runbook validate|show [PATH]`: the main CLI (bot/cli/main.py) dispatches here."""

from __future__ import annotations

import sys
from pathlib import Path

from bot.runbook.loader import DEFAULT_RUNBOOK, RunbookError, load_runbook
from bot.runbook.model import Runbook
from bot.runbook.show import render_runbook


def summary(runbook: Runbook) -> str:
    steps = runbook.all_steps()
    items = sum(len(task.items) for step in steps for task in step.tasks)
    validation = sum(len(c.items) for c in runbook.validation)
    return (f"{runbook.name}: {len(runbook.phases)} phases, {len(steps)} steps, {items} checklist items, "
            f"{len(runbook.triggers)} triggers, {len(runbook.scenarios)} scenarios, {len(runbook.actions)} actions, "
            f"{validation} validation items, {len(runbook.escalation.management)} escalation rungs")


def _load(path: str | None) -> Runbook | None:
    try:
        return load_runbook(Path(path) if path else DEFAULT_RUNBOOK)
    except RunbookError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        n = len(exc.problems)
        print(f"invalid runbook: {n} problem{'s' if n != 1 else ''}", file=sys.stderr)
        return None


def validate(path: str | None) -> int:
    """0 and a one-line summary when the runbook is valid; 1 and every problem on stderr when not."""
    runbook = _load(path)
    if runbook is None:
        return 1
    print(f"ok: {summary(runbook)}")
    return 0


def show(path: str | None) -> int:
    """Print the whole procedure for a terminal; 1 (with the problems) when the runbook is invalid."""
    runbook = _load(path)
    if runbook is None:
        return 1
    sys.stdout.write(render_runbook(runbook))
    return 0
