"""Buttons and forms bound to where they were shown: a page's Acknowledge works only for the person paged and only
from the DM the page was sent in; the declare form only for the person it was opened for, with its data as sealed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from sqlmodel import select

from bot.store.models import Page, TimelineEvent
from tests.authz.test_matrix import _deliver_action, _told, _with
from tests.support.harness import Harness, harness

DB1, DB2, OC1, PF1 = "U300DB01", "U300DB02", "U500OC01", "U600PF01"


async def _page(h: Harness, user: str) -> Page:
    async with h.bot.db.session() as session:
        page = (await session.exec(select(Page).where(Page.user_id == user))).first()
    assert page is not None and page.channel and page.ts
    return page


async def _refused(h: Harness) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.kind.endswith("_refused")))).all())  # type: ignore[attr-defined]


async def test_a_page_is_acknowledged_only_by_the_person_paged_from_its_own_dm(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command(OC1, "start --level immediate checkout errors")
        incident = await h.only_incident()
        page = await _page(h, DB1)
        dm = _with(h, page.channel or "", "page_ack")
        assert dm["ts"] == page.ts
        # The same button, clicked by the other Database Admin: refused, naming the person paged.
        await h.click(DB2, page.channel or "", dm["ts"], action_id="page_ack")
        assert f"the person paged: <@{DB1}>" in _told(h, DB2)[-1]
        # The person paged, but the click claims another message (the war room's header): refused too.
        header = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback incident"))
        action = {"action_id": "page_ack", "block_id": "x", "type": "button", "value": str(page.id), "action_ts": "1"}
        await _deliver_action(h, DB1, incident.channel_id or "", header["ts"], action)
        assert "not from this page" in _told(h, DB1)[-1] and f"<@{DB1}>" in _told(h, DB1)[-1]
        assert (await _page(h, DB1)).acked_at is None, "neither refusal acknowledged the page"
        assert sorted(e.actor or "" for e in await _refused(h)) == sorted([DB1, DB2]), "both are on the timeline"
        # From the DM, by the person paged: acknowledged.
        await h.click(DB1, page.channel or "", dm["ts"], action_id="page_ack")
        assert (await _page(h, DB1)).acked_at is not None


async def test_the_declare_form_declares_only_for_the_person_it_was_opened_for(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await h.command(OC1, "")  # /rollback alone, outside an incident channel: the declare form
        [view] = h.sb.ws.views[OC1]
        assert "mac" in json.loads(view["private_metadata"]), "sealed"
        for user, edit in ((PF1, None), (OC1, "C0OTHER")):  # replayed by someone else; its channel edited
            forged = copy.deepcopy(view) | {"id": h.sb.ws.new_id("V")}
            if edit:
                outer = json.loads(forged["private_metadata"])
                outer["d"] = json.dumps({"channel": edit})
                forged["private_metadata"] = json.dumps(outer)
            h.sb.ws.views.setdefault(user, []).append(forged)
            answer = await h.sb.submit(user, forged["id"], {"description": "forged"})
            await h.settle()
            assert answer["body"]["response_action"] == "errors", answer
            assert await h.incidents() == []
        await h.sb.submit(OC1, view["id"], {"description": "cart errors"})
        await h.settle()
        incident = await h.only_incident()
        assert incident.declared_by == OC1 and incident.origin_channel_id == "C0GENERAL"
