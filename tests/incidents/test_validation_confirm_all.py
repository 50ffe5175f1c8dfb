"""A validation list's owner confirms it in one click ("All N confirmed"): every item still unticked is ticked by
them and written on the timeline item by item; someone without the role is refused and nothing changes; the button
is gone once the list is complete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.core.errors import Refused
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.steps.validation_view import CONFIRM_ALL, validation_blocks
from bot.store.models import ChecklistItemState, Incident, TimelineEvent
from tests.support.harness import Harness, harness

QA, PLATFORM = "U400QA01", "U600PF01"


def _buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks for e in b.get("elements") or [] if e.get("type") == "button"]


def test_the_button_offers_what_is_left_and_disappears_when_nothing_is() -> None:
    checklist = load_runbook(DEFAULT_RUNBOOK).validation[0]
    n = len(checklist.items)
    assert n > 2, "the default runbook's first list has several items"
    fresh = [b.to_dict() for b in validation_blocks(checklist, set(), editable=True)]
    assert [b["text"]["text"] for b in _buttons(fresh)] == [f"All {n} confirmed"]
    assert _buttons(fresh)[0]["action_id"] == CONFIRM_ALL and _buttons(fresh)[0]["value"] == checklist.id
    one_done = [b.to_dict() for b in validation_blocks(checklist, {f"{checklist.id}.1"}, editable=True)]
    assert [b["text"]["text"] for b in _buttons(one_done)] == [f"All {n - 1} left confirmed"]
    every = {f"{checklist.id}.{i + 1}" for i in range(n)}
    assert _buttons([b.to_dict() for b in validation_blocks(checklist, every, editable=True)]) == []
    all_but_one = every - {f"{checklist.id}.{n}"}
    assert _buttons([b.to_dict() for b in validation_blocks(checklist, all_but_one, editable=True)]) == [], \
        "one box left is one click either way"
    assert _buttons([b.to_dict() for b in validation_blocks(checklist, set(), editable=False)]) == [], \
        "a closed incident's lists are read-only"


async def _ticked(h: Harness, incident: Incident, checklist_id: str) -> dict[str, str | None]:
    async with h.bot.db.session() as session:
        rows = (await session.exec(select(ChecklistItemState).where(
            ChecklistItemState.incident_id == incident.id, ChecklistItemState.step_id == f"validation:{checklist_id}",
            ChecklistItemState.checked == True))).all()  # noqa: E712
    return {r.item_id: r.by for r in rows}


def _list_message(h: Harness, incident: Incident, title: str) -> dict[str, Any]:
    return next(m for m in h.messages(incident.channel_id or "") if m["text"].endswith(f"Validation: {title}"))


async def test_the_owner_confirms_a_whole_list_in_one_click_and_an_outsider_is_refused(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command("U500OC01", "start payment --version v2.3.1")
        incident = await h.only_incident()
        await h.bot.resolution.post_validation(incident.id)
        checklist = h.bot.svc.runbook.validation[0]
        values = {f"{checklist.id}.{i + 1}" for i in range(len(checklist.items))}
        message = _list_message(h, incident, checklist.title)
        await h.click(PLATFORM, incident.channel_id or "", message["ts"], action_id=CONFIRM_ALL, value=checklist.id)
        assert await _ticked(h, incident, checklist.id) == {}, "a refusal changes nothing"
        refusal = h.sb.ws.ephemerals[PLATFORM][-1]["text"]
        assert "QA Lead" in refusal, refusal

        first = f"{checklist.id}.1"
        await h.click(QA, incident.channel_id or "", message["ts"], action_id="validation_tick", value=first)
        await h.click(QA, incident.channel_id or "", message["ts"], action_id=CONFIRM_ALL, value=checklist.id)
        assert await _ticked(h, incident, checklist.id) == {v: QA for v in values}
        async with h.bot.db.session() as session:
            lines = (await session.exec(select(TimelineEvent.text).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "validated"))).all()
        assert sorted(lines) == sorted(f"{checklist.title}: ☑ {i.label}" for i in checklist.items), \
            "each item is on the timeline once, the one ticked before included"
        with pytest.raises(Refused, match="not part of this runbook"):
            await h.bot.resolution.confirm_all(incident.id, "no_such_list", QA)
        shown = _list_message(h, incident, checklist.title)
        assert _buttons(shown["blocks"]) == [], "a complete list offers no button"
        assert f"{len(checklist.items)}/{len(checklist.items)} confirmed" in str(shown["blocks"])
