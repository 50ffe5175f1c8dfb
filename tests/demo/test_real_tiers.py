"""A whole incident at Slack's real rate limits (no ×90 scale), over HTTP and over Socket Mode.

The sandbox and the bot's limiter and call queue count Slack's tiers on the demo's simulated clock, which jumps
whenever the bot only waits for a rate-limit window, so the half-hour incident runs in seconds and nothing here
depends on the machine's speed. It proves the incident still runs to the end, that the bot stays inside every
limit (no 429), needs no scope beyond manifest.yml, and that re-renders are coalesced: at most one chat.update
per message per second, counted from the sandbox's call log on that clock. How long each interaction took to show
its result is a benchmark (bench/bench_real_tiers.py), not asserted here.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlmodel import select

from bot.demo.runner import Demo
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.procedure import procedure_for
from bot.store.db import Database
from bot.store.models import Execution, Incident

pytestmark = pytest.mark.slow  # end to end: scheduled first, so parallel workers finish together

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)
SCENARIO = "payment_system"


@pytest.mark.parametrize("transport", ["http", "socket_mode"])
async def test_a_whole_incident_at_slacks_real_tiers(tmp_path: Path, transport: str) -> None:
    demo = Demo(SCENARIO, 0.0, None, tmp_path, quiet=True, socket_mode=transport == "socket_mode", real_tiers=True)
    report = await demo.run()
    assert demo.sandbox is not None and demo.people is not None
    sb, people = demo.sandbox, demo.people
    assert sb.limits.enabled and sb.limits.scale == 1.0, "Slack's own tiers, unscaled"
    assert sb.deliveries and {d.get("via", "http") for d in sb.deliveries} == {transport}

    db = Database(f"sqlite:///{tmp_path / 'rollbot.db'}")
    async with db.session() as session:
        [incident] = (await session.exec(select(Incident))).all()
        executions = (await session.exec(select(Execution).order_by(Execution.started_at))).all()
    await db.dispose()
    assert incident.decision == "approved" and incident.status == "resolved"
    phase = next(p for p in procedure_for(RUNBOOK, SCENARIO).phases if p.replaced_by_scenario)
    expected = [t.action for s in phase.steps for t in s.tasks if t.action]
    ran = [e.action_id for e in executions if e.step_id in {s.id for s in phase.steps} and e.state == "succeeded"]
    assert ran == expected, "the scenario's actions ran once each, in order"
    assert report is not None and incident.id in report.read_text()

    calls = sb.calls
    assert not [c for c in calls if c["status"] == 429], "the bot's limiter kept inside Slack's tiers"
    assert not [c for c in calls if c["error"] in ("missing_scope", "not_in_channel")], "manifest.yml's scopes do"
    assert all(c["ok"] for c in calls), [c for c in calls if not c["ok"]][:3]

    updates: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    for call in calls:
        if call["method"] == "chat.update":
            updates[(call["args"]["channel"], call["args"]["ts"])].append(call["at"])
    assert len(updates) >= 10 and sum(map(len, updates.values())) >= 100, "a real incident's worth of re-renders"
    for message, times in updates.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= 1.0 - 1e-6 for gap in gaps), (message, min(gaps))

    # Every interaction was measured (the figure is the bench's): clicks, submissions and commands.
    kinds = {what.split()[0] for what, _ in people.results}
    assert {"click", "submit", "/rollback"} <= kinds
