"""Whether an action's effect is already in place in this incident, from the runs the engine recorded.

A gradual traffic restore that reached its last stage leaves production at 100 %; running it again would send
traffic back to its first stage (25 %) on the way up. So a task whose action is a staged restore is done by
an earlier run when the latest run of that action in the incident that moved traffic is a success through
the last stage, with the same parameters. A failed, halted, cancelled, timed out or interrupted latest run,
a later roll-back to an earlier stage, or a dry run (outside a drill) never counts. Other actions are not
judged here: a check or a test observes the system as it is now, so a later one is new information.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.core.clock import utc
from bot.runbook.model import Action
from bot.runbook.procedure import Procedure
from bot.slack.blocks import clock_time
from bot.store.models import Execution

MOVED_TRAFFIC = ("succeeded", "failed", "timed_out", "cancelled", "interrupted", "running", "approved")


def _own_values(action: Action, values: Mapping[str, Any]) -> dict[str, str]:
    """The values that decide the effect: everything but the stage parameter (each stage sets its own)."""
    return {k: str(v) for k, v in values.items() if k != action.stage_param}


def earlier_success(action: Action, rows: Iterable[Execution], *,
                    values: Mapping[str, Any] | None = None) -> Execution | None:
    """The run whose success already did what running `action` again would do; None when running it is not a
    repeat. `values`: what the new run would use (None: the runbook's own, i.e. nothing typed but the stage)."""
    if not action.stages:
        return None
    # A dry run (a drill's runs are dry) planned the stages and moved nothing.
    # One closed before it started (approval declined, cancelled) moved nothing either.
    mine = [r for r in rows if r.action_id == action.id and r.state in MOVED_TRAFFIC and not r.dry_run
            and (r.started_at is not None or r.state in ("approved", "running"))]
    if not mine:
        return None
    latest = max(mine, key=lambda r: (utc(r.started_at or r.requested_at), r.attempt))
    if latest.state != "succeeded" or latest.data.get("traffic_result") != "completed":
        return None  # still running, failed somewhere, or rolled back (a roll-back run has no traffic_result)
    reached = [s.get("percent") for s in latest.data.get("stages") or []]
    if not reached or reached[-1] != action.stages[-1]:
        return None
    earlier = _own_values(action, latest.data.get("values") or {})
    if values is None:
        typed = _own_values(action, latest.data.get("typed") or {})
        return latest if not typed else None
    return latest if earlier == _own_values(action, values) else None


def finished_at(row: Execution) -> datetime:
    return utc(row.finished_at or row.started_at or row.requested_at)


def done_line(action: Action, row: Execution, where: str) -> str:
    """What the earlier run did, for a person: '… brought traffic to 100 % at 14:32:05 UTC (Step 5.5: …)'."""
    by = f", run by <@{row.requested_by}>" if row.requested_by.startswith(("U", "W")) else ""
    return (f"{action.title} already brought traffic to {action.stages[-1]} % at {clock_time(finished_at(row))} "
            f"({where}{by})")


def refusal(action: Action, row: Execution, where: str) -> str:
    """Why a Run click on a repeat is refused; nothing was started."""
    return (f"{done_line(action, row, where)}. Running it again would first send traffic back to "
            f"{action.stages[0]} %, so nothing was started: this task is done by that run. The runbook does not "
            "allow a second restore in one incident.")


def where(procedure: Procedure, row: Execution) -> str:
    try:
        step = procedure.step(row.step_id)
    except KeyError:
        return "an earlier step"
    return f"Step {step.number}: {step.title}"


def done_tasks(procedure: Procedure, rows: Sequence[Execution]) -> dict[tuple[str, str], Execution]:
    """(step id, task id) of every task whose action an earlier run already did (with the runbook's values),
    with that run."""
    done: dict[tuple[str, str], Execution] = {}
    for step in procedure.steps():
        for task in step.tasks:
            if not task.action:
                continue
            row = earlier_success(procedure.runbook.action(task.action), rows)
            if row is not None:
                done[(step.id, task.id)] = row
    return done
