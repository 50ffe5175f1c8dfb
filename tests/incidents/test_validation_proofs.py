"""Validation items a successful run proves tick themselves (the runbook's `proven_by`), by the bot and saying
which run proved them; a run from before the rollback proves nothing, and an item a person touched stays theirs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.store.models import ChecklistItemState, Execution, Incident, TimelineEvent
from tests.support.harness import Harness, harness


async def _succeeded(h: Harness, incident: Incident, action_id: str, minutes_ago: float,
                     data: dict[str, Any] | None = None) -> None:
    finished = h.clock.now() - timedelta(minutes=minutes_ago)
    async with h.bot.db.session() as session:
        session.add(Execution(id=f"ex-{action_id}-{minutes_ago}", incident_id=incident.id, step_id="system_validation",
                              action_id=action_id, idempotency_key=f"{incident.id}:{action_id}:{minutes_ago}",
                              state="succeeded", requested_by="U400QA01", requested_at=finished,
                              started_at=finished, finished_at=finished, exit_code=0, data=data or {}))


async def _ticked(h: Harness, incident: Incident) -> dict[str, str | None]:
    async with h.bot.db.session() as session:
        rows = (await session.exec(select(ChecklistItemState).where(
            ChecklistItemState.incident_id == incident.id, ChecklistItemState.checked == True))).all()  # noqa: E712
    return {f"{r.step_id.split(':', 1)[1]}.{r.item_id.rsplit('.', 1)[1]}": r.by for r in rows
            if r.step_id.startswith("validation:")}


async def test_items_a_successful_run_proves_tick_themselves_once_and_a_persons_untick_stands(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment --version v2.3.1")
        incident = await h.only_incident()
        runbook = h.bot.svc.runbook
        async with h.bot.db.session() as session:
            row = await session.get(Incident, incident.id)
            assert row is not None
            row.rollback_started_at = h.clock.now() - timedelta(minutes=10)
        await _succeeded(h, incident, "error_rate_check", minutes_ago=20)  # before the rollback: no proof
        await _succeeded(h, incident, "critical_function_test", minutes_ago=2)
        await h.bot.resolution.post_validation(incident.id)
        functional = next(c for c in runbook.validation if c.id == "functional")
        proven = {f"functional.{n}" for n, i in enumerate(functional.items, 1) if "critical_function_test" in i.proven_by}
        ticked = await _ticked(h, incident)
        bot = h.bot.svc.slack.bot_user_id
        assert proven and {k for k, by in ticked.items() if by == bot} >= proven
        technical = next(c for c in runbook.validation if c.id == "technical")
        errors = next(n for n, i in enumerate(technical.items, 1) if "error_rate_check" in i.proven_by)
        assert f"technical.{errors}" not in ticked, "a run before the rollback started proves nothing"
        unproven = {f"functional.{n}" for n, i in enumerate(functional.items, 1) if not i.proven_by}
        assert not unproven & set(ticked), "what no run proves is left to QA"
        async with h.bot.db.session() as session:
            texts = (await session.exec(select(TimelineEvent.text).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "validated"))).all()
        everywhere = [i for c in runbook.validation for i in c.items if "critical_function_test" in i.proven_by]
        assert len(texts) == len(everywhere) and all("proven by “Run critical functionality tests”" in t for t in texts)

        # QA unticks one (they saw it fail by hand): a later render never ticks it back.
        first = sorted(proven)[0]
        message = next(m for m in h.messages(incident.channel_id or "") if m["text"].endswith(functional.title))
        await h.click("U400QA01", incident.channel_id or "", message["ts"], action_id="validation_tick",
                      value=first)  # a click on a ticked box unticks it
        await h.bot.resolution.post_validation(incident.id)
        assert first not in await _ticked(h, incident)


async def test_a_traffic_restore_proves_the_metric_gates_it_measured_at_every_stage_and_no_others(
        tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment --version v2.3.1")
        incident = await h.only_incident()
        async with h.bot.db.session() as session:
            row = await session.get(Incident, incident.id)
            assert row is not None
            row.rollback_started_at = h.clock.now() - timedelta(minutes=10)
        technical = next(c for c in h.bot.svc.runbook.validation if c.id == "technical")
        errors = next(n for n, i in enumerate(technical.items, 1) if "error_rate_check" in i.proven_by)
        health = next(n for n, i in enumerate(technical.items, 1) if "traffic_health_check" in i.proven_by)
        # Without a Prometheus the restore measured nothing: its success proves its HTTP probe only.
        await _succeeded(h, incident, "gradual_traffic_restore", minutes_ago=1, data={"stage_gates": []})
        await h.bot.resolution.post_validation(incident.id)
        ticked = await _ticked(h, incident)
        assert f"technical.{health}" in ticked and f"technical.{errors}" not in ticked
        await _succeeded(h, incident, "gradual_traffic_restore", minutes_ago=0.5, data={"stage_gates": ["error_rate_check"]})
        await h.bot.resolution.post_validation(incident.id)
        assert f"technical.{errors}" in await _ticked(h, incident), "every stage passed the error-rate gate"
