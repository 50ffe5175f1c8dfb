"""Without a Prometheus (the demo, a first install), the default runbook's metric gates fall back to what a person
does, and say so: no gate runs when the validation phase starts or once traffic is restored, Step 7 and Step 9 name
each measured item as a person's call, a person ticks it as before, and the gradual traffic restore runs on its
HTTP probe alone, saying at its start that the error rate is not measured at any stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import select

from bot.runbook.model import item_id
from bot.slack.blocks import escape
from bot.store.models import ChecklistItemState, Execution, Incident
from tests.executions.conftest import HealthServer
from tests.support.harness import Harness, harness
from tests.support.phases import in_validation

QA = "U400QA01"
TL = "U100TL01"


async def runs(h: Harness, incident_id: str) -> list[Execution]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(Execution).where(Execution.incident_id == incident_id))).all())


def step_blocks(h: Harness, incident: Incident, title: str) -> str:
    [message] = [m for m in h.messages(incident.channel_id or "") if m["text"].endswith(title)]
    return json.dumps(message["blocks"], ensure_ascii=False)


async def test_without_prometheus_no_gate_runs_and_each_step_says_the_items_are_a_persons_call(
        tmp_path: Path, health: HealthServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLLBOT_PROMETHEUS_URL", raising=False)
    monkeypatch.setenv("ROLLBOT_SCRIPT_SPEED", "200")
    monkeypatch.setenv("ROLLBOT_CHECK_URL_TRAFFIC_HEALTH_CHECK", health.url)
    async with harness(tmp_path) as h:
        assert h.bot.svc.settings.prometheus_url is None
        incident = await in_validation(h)
        metrics = {a.id for a in h.bot.svc.runbook.actions if a.kind == "prometheus"}
        assert metrics and not [r for r in await runs(h, incident.id) if r.action_id in metrics], \
            "no gate starts: there is nothing to measure with"
        step7 = step_blocks(h, incident, "Step 7: System Validation")
        for item in ("API response times <200ms", "Database query performance <50ms", "Page load times <2 seconds",
                     "Error rates <0.1%"):
            assert f"“{escape(item)}” is a person's call: no Prometheus is configured for Rollbot" in step7, item
        assert "measured from Prometheus" not in step7
        assert "“No new critical alerts” is a person's call" in step_blocks(h, incident, "Step 9: Monitoring and Validation")

        # The QA lead ticks an item the metrics would have measured: it is theirs, as before.
        task = h.bot.svc.runbook.step("system_validation").tasks[1]
        api = item_id(task.id, task.items.index("API response times <200ms"))
        await h.bot.checklists.tick(incident.id, "system_validation", task.id, {api}, QA)
        async with h.bot.db.session() as session:
            [row] = (await session.exec(select(ChecklistItemState).where(
                ChecklistItemState.incident_id == incident.id, ChecklistItemState.item_id == api))).all()
        assert (row.checked, row.by) == (True, QA)

        await h.bot.executions.request(incident.id, "traffic_restoration", "gradual_traffic_restoration",
                                       "gradual_traffic_restore", TL)
        await h.bot.executions.idle()
        await h.settle()
        await h.bot.executions.idle()
        [restore] = [r for r in await runs(h, incident.id) if r.action_id == "gradual_traffic_restore"]
        assert restore.state == "succeeded" and restore.data["traffic_result"] == "completed"
        assert health.probes == [200, 200, 200, 200], "each stage still passes its HTTP probe"
        assert restore.data["stage_gates"] == []
        assert restore.output.splitlines()[0] == (
            "[rollbot] no Prometheus is configured: Error rate under 0.1 % is not measured at any stage; judging it "
            "at each stage is a person's call")
        assert not [r for r in await runs(h, incident.id) if r.action_id in metrics], \
            "Step 9's gates, due once traffic is restored, do not start either"
