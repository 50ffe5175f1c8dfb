"""The status page through Statuspage's REST API (a local aiohttp server in its place): one page incident per
incident, created by the first approved update, moved to identified and monitoring, resolved at the end; and the
update each post promises becomes a reminder to the Product Manager."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlmodel import select

from bot.core.webserver import start_site
from bot.store.models import CommsDraft, Timer
from tests.comms.test_comms import _draft_message, _open, _work_the_procedure
from tests.support.harness import Harness, harness

PM = "U700PM01"


async def _approve(h: Harness, incident: Any, title: str) -> None:
    draft = _draft_message(h, incident, title)
    await h.click(PM, incident.channel_id or "", draft["ts"], text="Approve")


def _reminders(h: Harness, user: str) -> list[str]:
    return [m["text"] for dm in h.state()["dms"] if dm["user"] == user for m in dm["messages"]
            if "promised customers an update" in m["text"]]


async def test_one_page_incident_is_created_then_updated_at_each_moment_and_resolved(tmp_path: Any) -> None:
    calls: list[tuple[str, str, dict[str, Any]]] = []

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(("POST", request.path, body))
        return web.json_response({"id": "sp-inc-1", "status": body["incident"]["status"]}, status=201)

    async def update(request: web.Request) -> web.Response:
        body = await request.json()
        calls.append(("PATCH", request.path, body))
        return web.json_response({"id": request.match_info["incident"], "status": body["incident"]["status"]})

    app = web.Application()
    app.router.add_post("/v1/pages/{page}/incidents", create)
    app.router.add_patch("/v1/pages/{page}/incidents/{incident}", update)
    runner, port = await start_site(app)
    try:
        async with harness(tmp_path, STATUSPAGE_API_KEY="sp-key", STATUSPAGE_PAGE_ID="page1",
                           STATUSPAGE_API_URL=f"http://127.0.0.1:{port}/v1/") as h:
            incident = await _open(h)
            await _approve(h, incident, "Status page update (investigating)")
            assert [(c[0], c[1]) for c in calls] == [("POST", "/v1/pages/page1/incidents")]
            assert calls[0][2]["incident"]["status"] == "investigating"
            assert "card payments are failing" in calls[0][2]["incident"]["name"]
            assert (await h.only_incident()).data["statuspage_incident_id"] == "sp-inc-1"

            await _work_the_procedure(h, incident)  # the decision, every step, the validation lists
            await _approve(h, incident, "Status page update (identified)")
            await _approve(h, incident, "Status page update (monitoring)")
            await h.command("U100TL01", "resolve", incident.channel_id or "")
            await _approve(h, incident, "Status page update (resolved)")

            assert [c[0] for c in calls] == ["POST", "PATCH", "PATCH", "PATCH"], "created once, then updated"
            assert {c[1] for c in calls[1:]} == {"/v1/pages/page1/incidents/sp-inc-1"}
            assert [c[2]["incident"]["status"] for c in calls] == ["investigating", "identified", "monitoring",
                                                                   "resolved"]
            assert "about" in calls[-1][2]["incident"]["body"] and "card payments failed" in calls[-1][2]["incident"]["body"]
            resolved = _draft_message(h, incident, "Status page update (resolved)")
            assert "Posted to Statuspage (resolved)" in str(resolved["blocks"])

            # Publishing a draft again (a retried delivery) posts nothing more.
            async with h.bot.db.session() as session:
                row = (await session.exec(select(CommsDraft).where(
                    CommsDraft.template_id == "status_page_resolved"))).one()
            assert await h.bot.comms.publish_status_page(row.id or 0) == "Already on Statuspage."
            assert len(calls) == 4
    finally:
        await runner.cleanup()


async def test_a_promised_update_reminds_the_product_manager_when_it_is_due(tmp_path: Any) -> None:
    async with harness(tmp_path) as h:  # no Statuspage: posted by hand, marked sent
        incident = await _open(h)
        # Decided in time: a missed decision would pull the reminder forward (tested below).
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
        title = "Status page update (investigating)"
        await _approve(h, incident, title)
        assert not _reminders(h, PM), "approving is not sending: the promise starts when it goes out"
        await h.click(PM, incident.channel_id or "", _draft_message(h, incident, title)["ts"], text="Mark as sent")
        await h.advance(14 * 60)
        assert not _reminders(h, PM), "not due yet"
        await h.advance(2 * 60)
        due = _reminders(h, PM)
        assert len(due) == 1 and "Status page update (investigating)" in due[0], due
        assert "EST" in due[0] and "UTC" in due[0]
        await h.advance(60)
        assert len(_reminders(h, PM)) == 1, "a reminder fires once"


async def test_the_next_update_replaces_the_last_promise(tmp_path: Any) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)
        first = "Status page update (investigating)"
        await _approve(h, incident, first)
        await h.click(PM, incident.channel_id or "", _draft_message(h, incident, first)["ts"], text="Mark as sent")
        decision = next(m for m in h.messages(incident.channel_id or "") if m["text"].startswith("Rollback decision"))
        await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
        second = "Status page update (identified)"
        await _approve(h, incident, second)
        await h.click(PM, incident.channel_id or "", _draft_message(h, incident, second)["ts"], text="Mark as sent")
        async with h.bot.db.session() as session:
            timers = {t.key.rsplit(":", 1)[1]: t.status for t in (await session.exec(
                select(Timer).where(Timer.kind == "comms_update_due"))).all()}
        assert timers == {"status_page_update": "cancelled", "status_page_identified": "pending"}


async def test_a_missed_decision_pulls_the_promised_update_forward(tmp_path: Any) -> None:
    async with harness(tmp_path) as h:
        incident = await _open(h)  # Immediate level: the decision is due within 2 minutes
        title = "Status page update (investigating)"
        await _approve(h, incident, title)
        await h.click(PM, incident.channel_id or "", _draft_message(h, incident, title)["ts"], text="Mark as sent")
        await h.advance(60)
        assert not _reminders(h, PM)
        await h.advance(2 * 60)  # the decision deadline passes: the escalation starts, the update is due now
        await h.advance(1)
        assert len(_reminders(h, PM)) == 1, "reminded at the missed decision, not 15 minutes after posting"


async def test_an_older_draft_approved_late_never_moves_the_page_back(tmp_path: Any) -> None:
    calls: list[dict[str, Any]] = []

    async def create(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"id": "sp-inc-2"}, status=201)

    async def update(request: web.Request) -> web.Response:
        calls.append(await request.json())
        return web.json_response({"id": "sp-inc-2"})

    app = web.Application()
    app.router.add_post("/v1/pages/{page}/incidents", create)
    app.router.add_patch("/v1/pages/{page}/incidents/{incident}", update)
    runner, port = await start_site(app)
    try:
        async with harness(tmp_path, STATUSPAGE_API_KEY="sp-key", STATUSPAGE_PAGE_ID="page1",
                           STATUSPAGE_API_URL=f"http://127.0.0.1:{port}/v1/") as h:
            incident = await _open(h)
            decision = next(m for m in h.messages(incident.channel_id or "")
                            if m["text"].startswith("Rollback decision"))
            await h.click("U100TL01", incident.channel_id or "", decision["ts"], text="Approve rollback")
            await _approve(h, incident, "Status page update (identified)")
            await _approve(h, incident, "Status page update (investigating)")
            assert [c["incident"]["status"] for c in calls] == ["identified", "identified"]
            assert "We are investigating" in calls[1]["incident"]["body"], "its text is still posted"
    finally:
        await runner.cleanup()
