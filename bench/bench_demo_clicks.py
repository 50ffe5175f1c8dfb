"""How much a responder has to do, counted from the demo's transcript (`rollbot demo --transcript FILE`).

For each scenario: the human actions (clicks, modal submissions, slash commands; checkbox ticks apart) from the
alert until the scenario's rollback command is running, and in the whole incident; the incident channel's
messages, thread replies and header edits. The demo runs on simulated time, so the figures do not depend on how
busy the machine is.

    .venv/bin/python bench/bench_demo_clicks.py                         # every scenario, fresh demo runs
    .venv/bin/python bench/bench_demo_clicks.py --transcript T.json --scenario payment_system   # one transcript

Results: printed, and written to bench/results/demo_clicks.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook  # noqa: E402
from bot.runbook.model import Runbook  # noqa: E402
from bot.runbook.procedure import procedure_for  # noqa: E402

HUMAN = ("block_actions", "view_submission", "command")
TICKS = ("checklist_tick", "validation_tick")


def rollback_action(runbook: Runbook, scenario_id: str) -> str:
    """The scenario's rollback command: its procedure's action when a step runs it, else the first step action
    named for a rollback."""
    scenario = runbook.scenario(scenario_id)
    phase = next(p for p in procedure_for(runbook, scenario_id).phases if p.replaced_by_scenario)
    actions = [t.action for s in phase.steps for t in s.tasks if t.action]
    if scenario.procedure in actions:
        return scenario.procedure
    return next(a for a in actions if "rollback" in a)


def count(transcript: dict[str, Any], runbook: Runbook, scenario_id: str) -> dict[str, Any]:
    channel = next(c for c in transcript["channels"] if c["name"].startswith("inc-"))
    messages = channel["messages"]
    header_ts = (channel.get("pins") or [messages[0]["ts"]])[0]
    header_ts = header_ts.get("ts", header_ts) if isinstance(header_ts, dict) else header_ts
    title = runbook.action(rollback_action(runbook, scenario_id)).title
    running_at = min((c["at"] for c in transcript["calls"]
                      if c["method"] in ("chat.postMessage", "chat.update")
                      and f"{title} — running" in str(c["args"].get("text", ""))), default=None)
    human = [d for d in transcript["deliveries"] if d["kind"] in HUMAN]
    before = [d for d in human if running_at is not None and d.get("at", float("inf")) < running_at]
    timed = all("at" in d for d in human)
    return {
        "scenario": scenario_id,
        "rollback_action": title,
        "clicks_to_rollback_running": len(before) if timed and running_at is not None else None,
        "ticks_to_rollback_running": sum(d.get("action") in TICKS for d in before) if timed else None,
        "human_actions_total": len(human),
        "checkbox_ticks_total": sum(d.get("action") in TICKS for d in human) if timed else None,
        "channel_messages": len(messages),
        "thread_replies": sum(len(m.get("replies") or []) for m in messages),
        "header_edits": sum(1 for c in transcript["calls"]
                            if c["method"] == "chat.update" and c["args"].get("ts") == header_ts),
    }


def run_demo(scenario_id: str, out: Path) -> None:
    subprocess.run([sys.executable, "-m", "bot.cli.main", "demo", "--scenario", scenario_id, "--speed", "0", "--quiet",
                    "--transcript", str(out)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="scenario id (repeatable; default: every scenario)")
    parser.add_argument("--transcript", help="count this transcript instead of running the demo (one scenario)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "demo_clicks.json"))
    args = parser.parse_args()
    runbook = load_runbook(DEFAULT_RUNBOOK)
    scenarios = args.scenario or [s.id for s in runbook.scenarios]
    rows = []
    if args.transcript:
        rows.append(count(json.loads(Path(args.transcript).read_text()), runbook, scenarios[0]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for scenario_id in scenarios:
                path = Path(tmp) / f"{scenario_id}.json"
                run_demo(scenario_id, path)
                rows.append(count(json.loads(path.read_text()), runbook, scenario_id))
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))
    if not args.transcript:
        Path(args.out).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
