"""An opening alert is answered once its receipt is stored: the incident's row (holding the trigger's dedup key),
its opening lines, the alert's rows and an outbox row owing the rest of the declaration, in one transaction. The
rest (steps, timers) is written once, after the answer by the webhook's process, or by the outbox worker when
that process died; the war-room promise it schedules then opens the room. Start-up's rehearsal of the first
alert writes it all and leaves no trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, func
from sqlmodel import SQLModel, col, select

from bot.alerts.parsers import parse
from bot.core.events import FAST_PATH_GRACE
from bot.incidents.service import DECLARING
from bot.incidents.warroom import OPEN_GRACE
from bot.store.models import IncidentAlert, StepState, Timer
from tests.authz.test_table import _database
from tests.incidents.test_war_room import PAYMENT_ALERT, post_alert
from tests.support.harness import Harness, harness


async def _count(h: Harness, model: type[SQLModel], *where: Any) -> int:
    async with h.bot.db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model).where(*where))).one())


async def test_the_answer_comes_with_the_receipt_and_the_rest_is_written_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        result = await h.bot.intake.receive(parse("alertmanager", PAYMENT_ALERT))
        [incident_id] = result.opened
        incident = await h.only_incident()
        assert incident.status == DECLARING and incident.dedup_key
        assert await _count(h, IncidentAlert, IncidentAlert.incident_id == incident_id) == 1
        assert await _count(h, StepState, StepState.incident_id == incident_id) == 0, "the rest is not written yet"
        owed = await _count(h, Timer, col(Timer.key).contains(":declaring:"), Timer.status == "pending")
        assert owed == 1, "the rest is owed by one durable outbox row, written with the receipt"

        repeat = await h.bot.intake.receive(parse("alertmanager", PAYMENT_ALERT))
        assert (repeat.opened, repeat.repeats) == ([], 1), "a repeat finds the receipt: no second incident"

        await h.bot.svc.events.deliver(*result.declaring.values())
        steps = await _count(h, StepState, StepState.incident_id == incident_id)
        timers = await _count(h, Timer, Timer.incident_id == incident_id)
        assert (await h.only_incident()).status == "open" and steps > 10
        assert not await h.bot.incidents.finish(incident_id), "a second finish writes nothing"
        assert await _count(h, StepState, StepState.incident_id == incident_id) == steps
        assert await _count(h, Timer, Timer.incident_id == incident_id) == timers


async def test_a_receipt_whose_process_died_is_finished_by_the_outbox_and_its_war_room_opens(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        result = await h.bot.intake.receive(parse("alertmanager", PAYMENT_ALERT))
        [incident_id] = result.opened  # nobody delivers result.declaring: the process "died" after answering
        assert not await h.bot.warroom.open(incident_id), "no war room for a declaration still owed its rest"
        await h.advance(FAST_PATH_GRACE.total_seconds() + 1)
        incident = await h.only_incident()
        assert incident.status == "open" and await _count(h, StepState, StepState.incident_id == incident_id) > 10
        assert incident.channel_id is None, "the war room waits for its promise"
        await h.advance(OPEN_GRACE.total_seconds())
        await h.quiet()
        incident = await h.only_incident()
        assert incident.channel_id and incident.data.get("war_room_ready")


async def test_the_start_up_rehearsal_leaves_nothing_and_the_first_alert_then_opens_normally(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        before = await _database(h)
        inserts: list[str] = []

        def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith("INSERT"):
                inserts.append(statement.split("(", 1)[0])

        event.listen(h.bot.db.engine.sync_engine, "before_cursor_execute", seen)
        try:
            await h.bot.intake.rehearse()
        finally:
            event.remove(h.bot.db.engine.sync_engine, "before_cursor_execute", seen)
        written = " ".join(inserts)
        assert all(t in written for t in ("incidents", "incident_alerts", "step_states", "timers", "timeline_events")), \
            written
        assert await _database(h) == before, "the rehearsal is rolled back: not a row anywhere"
        status, _body = await post_alert(h, "alertmanager", PAYMENT_ALERT)
        assert status == 202
        await h.quiet()
        incident = await h.only_incident()
        assert incident.status == "open" and incident.data.get("war_room_ready")
