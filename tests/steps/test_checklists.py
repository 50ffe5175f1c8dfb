"""Live checklists end to end: ticks through the sandbox, step completion and skips, phase progression,
and step deadlines that fire once — across a restart and a second bot process too."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlmodel import select

from bot.app import Rollbot
from bot.runbook.procedure import items_of
from bot.store.models import ChecklistItemState, Incident, StepState, TimelineEvent
from handlers import checklists as checklist_handlers
from tests.support.harness import Harness, harness


async def _open(h: Harness, text: str = "start payment") -> Incident:
    await h.command("U500OC01", text)
    return await h.only_incident()


def _step_message(h: Harness, incident: Incident, number: int | float) -> dict[str, Any]:
    return next(m for m in h.messages(incident.channel_id or "") if m["text"].endswith(
        tuple(f"Step {number}: {s.title}" for s in h.bot.svc.runbook.all_steps())))


async def _states(h: Harness, incident: Incident) -> dict[str, str]:
    async with h.bot.db.session() as session:
        rows = (await session.exec(select(StepState).where(StepState.incident_id == incident.id))).all()
    return {r.step_id: r.status for r in rows}


async def _events(h: Harness, incident: Incident, kind: str) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident.id, TimelineEvent.kind == kind))).all())


async def _manual_item(h: Harness, incident: Incident) -> tuple[str, str, str, dict[str, Any]]:
    """Step 1's first item a person ticks (the health check and the war room's work tick their own): (task id,
    item id, item text, the step's message)."""
    step = h.bot.svc.runbook.phases[0].steps[0]
    manual = next(t for t in step.tasks if not t.action and not t.ticked_by)
    item, text = next((i, t) for i, t in items_of(step) if i.startswith(manual.id + "."))
    return manual.id, item, text, _step_message(h, incident, 1)


async def _item_row(h: Harness, incident: Incident, item: str) -> ChecklistItemState | None:
    async with h.bot.db.session() as session:
        return (await session.exec(select(ChecklistItemState).where(
            ChecklistItemState.incident_id == incident.id, ChecklistItemState.item_id == item))).first()


async def test_a_checkbox_click_is_stored_before_the_ack_and_then_rendered(tmp_path: Path, monkeypatch: Any) -> None:
    """The tick is in the database when Slack has its answer; the re-render follows (the handler gives it a
    moment before the ack, but how long it takes depends on the machine, so it is checked after settling)."""
    monkeypatch.setattr(checklist_handlers, "TICK_STORED_WITHIN_SECONDS", 3600)  # however slow this machine is
    async with harness(tmp_path) as h:
        incident = await _open(h)
        task_id, first_item, first_text, message = await _manual_item(h, incident)
        delivery = await h.sb.click("U500OC01", incident.channel_id or "", message["ts"], text=first_text)
        # No settle(): what the click changed must already be true when Slack has its answer.
        assert delivery["status"] == 200
        row = await _item_row(h, incident, first_item)
        assert row is not None and row.checked and row.by == "U500OC01"
        await h.settle()
        rendered = _step_message(h, incident, 1)
        step_id = h.bot.svc.runbook.phases[0].steps[0].id
        box = next(e for b in rendered["blocks"] for e in b.get("elements", []) if e.get("type") == "checkboxes"
                   and b["block_id"].startswith(f"cl|{step_id}|{task_id}|"))
        assert [o["value"] for o in box["initial_options"]] == [first_item]


async def test_a_tick_is_acknowledged_while_its_database_write_is_still_waiting(tmp_path: Path,
                                                                               monkeypatch: Any) -> None:
    """Slack gets its answer inside its 3 s even when storing the tick takes longer; the tick is stored after."""
    monkeypatch.setattr(checklist_handlers, "TICK_STORED_WITHIN_SECONDS", 0.05)
    monkeypatch.setattr(checklist_handlers, "TICK_RENDERED_WITHIN_SECONDS", 0.05)
    async with harness(tmp_path) as h:
        incident = await _open(h)
        _task, item, text, message = await _manual_item(h, incident)
        release = asyncio.Event()
        tick = h.bot.checklists.tick

        async def slow_tick(*args: Any, **kwargs: Any) -> Any:
            await release.wait()  # the database is still busy when the budget runs out, however fast the machine
            return await tick(*args, **kwargs)

        monkeypatch.setattr(h.bot.checklists, "tick", slow_tick)
        delivery = await h.sb.click("U500OC01", incident.channel_id or "", message["ts"], text=text)
        assert delivery["status"] == 200, "acknowledged while the tick waits"
        assert await _item_row(h, incident, item) is None
        release.set()
        await h.settle()
        row = await _item_row(h, incident, item)
        assert row is not None and row.checked and row.by == "U500OC01"


async def test_the_war_rooms_own_work_ticks_itself_when_the_room_is_ready(tmp_path: Path) -> None:
    """Team Notification (page the lead, activate the team, the command centre, the clock) is what opening the war
    room does: its items are ticked by the bot, on the timeline, and nobody else's are."""
    async with harness(tmp_path) as h:
        incident = await _open(h)
        step = h.bot.svc.runbook.phases[0].steps[0]
        [own] = [t for t in step.tasks if t.ticked_by == "war_room_ready"]
        async with h.bot.db.session() as session:
            rows = (await session.exec(select(ChecklistItemState).where(
                ChecklistItemState.incident_id == incident.id, ChecklistItemState.checked == True))).all()  # noqa: E712
        ticked = {r.item_id for r in rows if r.by == h.bot.svc.slack.bot_user_id}
        assert {i for i, _ in items_of(step) if i.startswith(own.id + ".")} <= ticked
        assert not any(i.startswith(t.id + ".") for t in step.tasks if not t.action and not t.ticked_by
                       for i in ticked), "items a person must do stay theirs"
        rendered = _step_message(h, incident, 1)
        box = next(e for b in rendered["blocks"] for e in b.get("elements", []) if e.get("type") == "checkboxes"
                   and b["block_id"].startswith(f"cl|{step.id}|{own.id}|"))
        assert len(box["initial_options"]) == len(own.items)


async def test_ticking_every_item_completes_the_step_and_the_decision_advances_the_phase(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        runbook = h.bot.svc.runbook
        step1, step2 = runbook.phases[0].steps
        await h.bot.executions.idle()  # the automatic health check ticks its own task's items when it succeeds
        for item, _ in items_of(step1):
            message = _step_message(h, incident, 1)
            ticked = {o["value"] for b in message["blocks"] for e in b.get("elements", [])
                      if e.get("type") == "checkboxes" for o in e.get("initial_options") or []}
            if item not in ticked:  # a person clicks only the boxes still empty
                await h.click("U500OC01", incident.channel_id or "", message["ts"], value=item,
                              action_id="checklist_tick")
        states = await _states(h, incident)
        assert states[step1.id] == "done"
        assert states[step2.id] == "active", "the decision step waits for the decision, not for ticks"
        await h.bot.checklists.complete_step(incident.id, step2.id, "U100TL01", "done", "approved", authorize=False)
        await h.settle()
        incident = await h.only_incident()
        phase2 = runbook.phases[1]
        assert incident.phase_id == phase2.id
        states = await _states(h, incident)
        assert all(states[s.id] == "active" for s in phase2.steps)
        assert _step_message(h, incident, phase2.steps[0].number)
        assert [e.data["phase"] for e in await _events(h, incident, "phase_started")] == [runbook.phases[0].id, phase2.id]


async def test_a_skip_needs_a_reason_and_lands_on_the_timeline(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        message = _step_message(h, incident, 1)
        await h.click("U500OC01", incident.channel_id or "", message["ts"], action_id="step_skip")
        view = h.sb.ws.views["U500OC01"][-1]
        refused = await h.sb.submit("U500OC01", view["id"], {"reason": "  "})
        assert refused["body"]["response_action"] == "errors"
        await h.sb.submit("U500OC01", view["id"], {"reason": "alert was already triaged by SRE"})
        await h.settle()
        step1 = h.bot.svc.runbook.phases[0].steps[0]
        assert (await _states(h, incident))[step1.id] == "skipped"
        [skip] = await _events(h, incident, "step_skipped")
        assert "already triaged" in skip.text and skip.actor == "U500OC01"


async def test_only_the_owner_or_an_incident_lead_may_mark_a_step_done(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        message = _step_message(h, incident, 1)
        await h.click("U900OUT1", incident.channel_id or "", message["ts"], action_id="step_done")
        assert (await _states(h, incident))[h.bot.svc.runbook.phases[0].steps[0].id] == "active"
        assert "Only the On-Call Engineer" in h.sb.ws.ephemerals["U900OUT1"][-1]["text"]


async def test_forged_clicks_are_refused_and_change_nothing(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        other = await h.bot.incidents.declare(
            h.bot.drills.declaration("U100TL01", "database_only"))
        await h.bot.warroom.open(other[0].id)
        other_channel = (await h.bot.incidents.get(other[0].id)).channel_id  # type: ignore[union-attr]
        assert other_channel and other_channel != incident.channel_id
        message = _step_message(h, incident, 1)
        payload_base = {"type": "block_actions", "user": {"id": "U100TL01"}, "trigger_id": "1.2.3",
                        "team": {"id": "T0ROLLBOT"}, "api_app_id": "A0ROLLBOT", "token": "t"}

        async def forge(channel: str, ts: str, block_id: str, values: list[str]) -> None:
            payload = payload_base | {
                "container": {"type": "message", "message_ts": ts, "channel_id": channel},
                "channel": {"id": channel}, "message": {"ts": ts},
                "actions": [{"action_id": "checklist_tick", "block_id": block_id, "type": "checkboxes",
                             "selected_options": [{"value": v} for v in values]}]}
            await h.sb._deliver(("payload=" + json.dumps(payload)).encode().replace(b"+", b"%2B"),
                                "application/x-www-form-urlencoded", "block_actions")

        step = h.bot.svc.runbook.phases[0].steps[0]
        task = step.tasks[0].id
        await forge(incident.channel_id or "", message["ts"], f"cl|{step.id}|{task}|0", ["not_an_item.1"])
        await forge(incident.channel_id or "", message["ts"], f"cl|no_such_step|{task}|0", [f"{task}.1"])
        # A real step message ts, replayed against another incident's channel.
        await forge(other_channel, message["ts"], f"cl|{step.id}|{task}|0", [f"{task}.1"])
        await h.settle()
        async with h.bot.db.session() as session:
            forged = (await session.exec(select(ChecklistItemState).where(ChecklistItemState.by == "U100TL01"))).all()
        assert forged == []  # (the bot itself ticks the health check's items when it succeeds)
        refusals = [e["text"] for e in h.sb.ws.ephemerals.get("U100TL01", []) if e["text"].startswith(":no_entry:")]
        assert len(refusals) == 3, refusals


async def test_a_step_reminder_fires_once_at_its_window_end(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        step1 = h.bot.svc.runbook.phases[0].steps[0]
        await h.advance(60)
        assert await _events(h, incident, "step_overdue") == []
        await h.advance(61)  # Step 1's window ends at 2 minutes
        await h.advance(30)
        await h.advance(300)
        overdue = [e for e in await _events(h, incident, "step_overdue") if e.data["step"] == step1.id]
        assert len(overdue) == 1
        replies = [r for m in h.messages(incident.channel_id or "") for r in m.get("replies", [])
                   if "Overdue steps" in r["text"]]
        assert len(replies) == 1, "one overdue notice per incident, edited in place, not one per step"
        assert "Step 1: Incident Detection and Alert is overdue" in replies[0]["text"]
        assert "<@U500OC01>" in replies[0]["text"] and "(due 09:02:00 UTC)" in replies[0]["text"]
        assert "Step 2: Rollback Decision is overdue" in replies[0]["text"], "a later overdue step joins the notice"
        await h.bot.checklists.complete_step(incident.id, step1.id, "U500OC01")
        await h.settle()
        [notice] = [r for m in h.messages(incident.channel_id or "") for r in m.get("replies", [])
                    if r["ts"] == replies[0]["ts"]]
        assert "Step 1:" not in notice["text"] and "Step 2:" in notice["text"], "a closed step leaves the notice"
        header = next(m for m in h.messages(incident.channel_id or "") if "Rollback incident" in m["text"])
        assert "Overdue" in json.dumps(header["blocks"])


async def test_a_restarted_and_a_second_bot_process_fire_each_due_timer_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        await h.bot.stop()  # the first process goes away with timers due
        h.clock.advance(6 * 60)
        second = Rollbot(h.bot.settings, clock=h.clock)
        third = Rollbot(h.bot.settings, clock=h.clock)
        await second.start(scheduler=False)
        await third.start(scheduler=False)
        import asyncio

        await asyncio.gather(second.svc.timers.tick(), third.svc.timers.tick(), second.svc.timers.tick())
        await second.idle()
        await third.idle()
        fired = await _events(h, incident, "step_overdue")
        assert sorted(e.data["step"] for e in fired) == sorted(s.id for s in h.bot.svc.runbook.phases[0].steps)
        await second.stop()
        await third.stop()
        h.bot = second  # the harness tears down what is still running
