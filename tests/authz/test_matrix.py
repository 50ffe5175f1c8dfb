"""The state-change matrix, through Slack: for EVERY action_id, shortcut, view callback and /rollback subcommand the
Bolt app registers (read back from the app, so a listener added without a row here fails the first test) x
{role holder, other role, outsider, declarer, requester}, the interaction is performed for real through the sandbox
and the signed HTTP endpoint. Exactly the allowed cells change state; every other cell changes nothing in the
database (but the timeline's refused attempt) or in Slack, is told who can do it instead, and goes on the timeline.
Listeners that change nothing by design (opening a form, showing a status) are declared so here, and the test
proves that no cell of theirs changes anything either."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bot.core import timers
from bot.decision.confirm_view import confirm_modal
from bot.sandbox import payloads
from bot.store.models import CommsDraft, Execution, Incident, Page, TimelineEvent
from handlers.interaction import _mac
from tests.authz.test_table import (
    DECLARER,
    MATRIX,
    OUTSIDER,
    PERSONAS,
    _database,
    registered_interactions,
)
from tests.support.harness import Harness, harness

TL1, TL2, OC1, OC2, DO1, DO2 = "U100TL01", "U100TL02", "U500OC01", "U500OC02", "U200DO01", "U200DO02"
DB1, DB2, QA1, PF1, PM1, PM2 = "U300DB01", "U300DB02", "U400QA01", "U600PF01", "U700PM01", "U700PM02"
AUTH = {"Authorization": "Bearer test-alert-token"}

Ctx = dict[str, Any]
Setup = Callable[[Harness, Ctx], Awaitable[None]]
Act = Callable[[Harness, Ctx, str], Awaitable[None]]


@dataclass(frozen=True)
class Row:
    act: Act  # performs the interaction as a user, through Slack
    changes: bool = True  # False: declared to change nothing (opens a form, shows a status, a link)
    setup: Setup | None = None  # what must exist first; runs before the "before" snapshot
    repeatable: bool = False  # every allowed persona changes state again (a note, a new incident)
    people: dict[str, str | None] = field(default_factory=dict)  # overrides MATRIX's holder / other_role / requester
    declare: str = "start --level immediate --version v2.3.1 checkout errors after deploy"
    alone: bool = False  # its allowed change would stop another row's: not in a shared incident


# --- finding what to click ---------------------------------------------------------------------------------------

def _all_messages(h: Harness, channel: str) -> list[dict[str, Any]]:
    state = h.state()
    where = next(c for c in state["channels"] + state["dms"] if c["id"] == channel)
    return [x for m in where["messages"] for x in [m, *m.get("replies", [])]]


def _with(h: Harness, channel: str, action_id: str, contains: str = "") -> dict[str, Any]:
    """The newest message in `channel` (or its threads) carrying `action_id` (and `contains` in its text)."""
    found = [m for m in _all_messages(h, channel)
             if f'"{action_id}' in json.dumps(m.get("blocks") or []) and contains in m["text"]]
    assert found, f"no message with {action_id} {contains!r} in {channel}"
    return found[-1]


def button(action_id: str, contains: str = "", channel: str = "incident", value: str | None = None) -> Act:
    """Click the real button (or checkbox, select) of the newest message that carries it; `channel` and `value`
    name ctx entries (or are literal channels)."""
    async def act(h: Harness, ctx: Ctx, user: str) -> None:
        where = ctx.get(channel, channel)
        message = _with(h, where, action_id, contains)
        await h.click(user, where, message["ts"], action_id=action_id, value=ctx[value] if value else None)
        await _quiet(h)
    return act


def forged_button(action_id: str, on: str, contains: str, value_key: str) -> Act:
    """A button Rollbot no longer renders (older messages may still carry it): the click is built by hand, on the
    message that carries `on`."""
    async def act(h: Harness, ctx: Ctx, user: str) -> None:
        message = _with(h, ctx["incident"], on, contains)
        action = {"action_id": action_id, "block_id": "x", "type": "button", "value": ctx[value_key],
                  "action_ts": "1.0"}
        await _deliver_action(h, user, ctx["incident"], message["ts"], action)
    return act


async def _deliver_action(h: Harness, user: str, channel: str, ts: str, action: dict[str, Any]) -> None:
    message = h.sb._find_message(user, channel, ts)[0]
    payload = payloads.block_actions(h.sb.ws, user, channel, message, action, {},
                                     h.sb._response_url(user, channel, ts), h.sb._trigger(user))
    result = await h.sb._deliver(urlencode({"payload": json.dumps(payload)}).encode(),
                                 "application/x-www-form-urlencoded", "block_actions")
    assert result["status"] == 200, result
    await _quiet(h)


def command(text: str, channel: str = "incident") -> Act:
    async def act(h: Harness, ctx: Ctx, user: str) -> None:
        await h.command(user, text.format(**ctx), ctx.get(channel, channel))
        await _quiet(h)
    return act


def note_shortcut() -> Act:
    async def act(h: Harness, ctx: Ctx, user: str) -> None:
        message = _all_messages(h, ctx["incident"])[0]
        payload = {"type": "message_action", "callback_id": "timeline_note", "trigger_id": h.sb._trigger(user),
                   "user": {"id": user, "name": h.sb.ws.users[user].name}, "team": {"id": h.sb.ws.team_id},
                   "channel": {"id": ctx["incident"], "name": "incident"}, "message_ts": message["ts"],
                   "message": {"type": "message", "ts": message["ts"], "text": f"seen by {user}"},
                   "response_url": h.sb._response_url(user, ctx["incident"], message["ts"])}
        result = await h.sb._deliver(urlencode({"payload": json.dumps(payload)}).encode(),
                                     "application/x-www-form-urlencoded", "shortcut")
        assert result["status"] == 200, result
        await _quiet(h)
    return act


def submit(values: dict[str, Any]) -> Act:
    """Submit the form the setup opened (ctx["view"]), as `user`: sealed for them, as if they had opened it (had
    the role then), so what refuses them is the rule at submission time, not the seal."""
    async def act(h: Harness, ctx: Ctx, user: str) -> None:
        view = copy.deepcopy(ctx["view"])
        view["id"] = h.sb.ws.new_id("V")
        outer = json.loads(view.get("private_metadata") or "{}")
        if isinstance(outer, dict) and "mac" in outer:
            outer["mac"] = _mac(h.bot, view["callback_id"], user, outer["d"])
            view["private_metadata"] = json.dumps(outer)
        h.sb.ws.views.setdefault(user, []).append(view)
        await h.sb.submit(user, view["id"], {k: v.format(**ctx) if isinstance(v, str) else v
                                             for k, v in values.items()})
        await _quiet(h)
    return act


async def _quiet(h: Harness) -> None:
    await h.settle()
    await h.bot.executions.idle()
    await h.settle()


# --- setups ---------------------------------------------------------------------------------------------------------

def opens(act: Act, user: str) -> Setup:
    """`user` opens the form; it is taken out of their client (they closed it) for the rows to submit."""
    async def setup(h: Harness, ctx: Ctx) -> None:
        await act(h, ctx, user)
        ctx["view"] = h.sb.ws.views[user].pop()
    return setup


def chain(*setups: Setup) -> Setup:
    async def setup(h: Harness, ctx: Ctx) -> None:
        for s in setups:
            await s(h, ctx)
    return setup


async def draft_approved(h: Harness, ctx: Ctx) -> None:
    async with h.bot.db.session() as session:
        draft = (await session.exec(select(CommsDraft).where(CommsDraft.incident_id == ctx["incident_id"],
                                                             CommsDraft.template_id == "status_page_update"))).one()
    await h.bot.comms.approve(draft.id or 0, PM1)


async def validation_posted(h: Harness, ctx: Ctx) -> None:
    await h.bot.resolution.post_validation(ctx["incident_id"])


async def rollback_approved(h: Harness, ctx: Ctx) -> None:
    request = await h.bot.approvals.rollback_request(ctx["incident_id"])
    assert request is not None
    await h.bot.approvals.vote(request.id, TL1, "approve")
    await _quiet(h)


async def restore_requested(h: Harness, ctx: Ctx) -> None:
    """A destructive action waiting for its two approvals, requested by the row's requester (TL2 if none)."""
    await rollback_approved(h, ctx)
    requested = await h.bot.executions.request(ctx["incident_id"], "application_rollback", "database_rollback_run",
                                               "rollback_database", ctx.get("requester", TL2))
    ctx["execution"] = requested.execution.id
    await _quiet(h)


async def confirmation_opened(h: Harness, ctx: Ctx) -> None:
    """TL1 approved the rollback; the requester opens the restore's typed confirmation (the form the rows submit)."""
    await restore_requested(h, ctx)
    request = next(r for r in await _requests(h, ctx) if r.subject == f"execution:{ctx['execution']}")
    ctx["request"] = request.id
    challenge = await h.bot.approvals.open_confirmation(request.id, ctx.get("requester", TL2))
    ctx["view"] = confirm_modal(challenge.id, challenge.action_title, challenge.prompt, challenge.phrase,
                                challenge.expires_at).to_dict() | {"id": "V0"}
    ctx["phrase"] = challenge.phrase


async def _requests(h: Harness, ctx: Ctx) -> list[Any]:
    from bot.store.models import ApprovalRequest

    async with h.bot.db.session() as session:
        return list((await session.exec(select(ApprovalRequest).where(
            ApprovalRequest.incident_id == ctx["incident_id"]))).all())


async def decision_missed(h: Harness, ctx: Ctx) -> None:
    """The decision deadline passed with no vote: re-opening the vote is what changes state."""
    request = await h.bot.approvals.rollback_request(ctx["incident_id"])
    assert request is not None
    ctx["request"] = request.id
    level = h.bot.svc.runbook.level((await _incident(h, ctx)).level)
    await h.advance(level.decision_minutes * 60 + 1)
    await _quiet(h)


async def _incident(h: Harness, ctx: Ctx) -> Incident:
    async with h.bot.db.session() as session:
        incident = await session.get(Incident, ctx["incident_id"])
    assert incident is not None
    return incident


def failed_run(action_id: str, step_id: str, task_id: str, data: dict[str, Any] | None = None) -> Setup:
    """A run that failed (a traffic restore halted at 50% when `data` says so), shown in its step's thread."""
    async def setup(h: Harness, ctx: Ctx) -> None:
        await rollback_approved(h, ctx)
        now = h.clock.now()
        row = Execution(id=f"ex-{action_id}", incident_id=ctx["incident_id"], step_id=step_id, task_id=task_id,
                        action_id=action_id, idempotency_key=f"{ctx['incident_id']}:{step_id}:{action_id}:9", attempt=9,
                        state="failed", requested_by=ctx.get("requester") or DO1, requested_at=now, started_at=now,
                        finished_at=now + timedelta(seconds=4), exit_code=3, duration_s=4.0, output="it failed",
                        data={"kind": "shell", **(data or {})})
        async with h.bot.db.session() as session:
            session.add(row)
        await h.bot.executions.rendering.render(row.id)
        ctx["execution"] = row.id
        await _quiet(h)
    return setup


HALTED = {"traffic_result": "halted", "at": 50, "rollback_to": 25, "next_stage": 75,
          "stages": [{"percent": 25, "verdict": "passed", "reason": "status 200"},
                     {"percent": 50, "verdict": "failed", "reason": "status 503, expected 200"}]}

CACHE_RESET_FAILED = failed_run("reset_cache_cdn", "infrastructure_rollback", "cache_and_cdn")
TRAFFIC_HALTED = failed_run("gradual_traffic_restore", "traffic_restoration", "gradual_traffic_restoration", HALTED)


async def scenario_offered(h: Harness, ctx: Ctx) -> None:
    """The scenario's Run scenario message, as posted when its execution phase starts."""
    await h.bot.executions.scenarios.offer(ctx["incident_id"], "rollback_execution")
    await _quiet(h)


async def page_dm(h: Harness, ctx: Ctx) -> None:
    """The Database Administrator's page, in their DM."""
    async with h.bot.db.session() as session:
        page = (await session.exec(select(Page).where(Page.incident_id == ctx["incident_id"],
                                                      Page.user_id == DB1))).first()
    assert page is not None and page.channel, "the Database Administrator was paged"
    ctx["dm"] = page.channel


def _payment_alert(status: str = "firing") -> dict[str, Any]:
    return {"version": "4", "status": status, "receiver": "rollbot", "groupKey": "{}:{a=\"Pay\"}",
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [{"status": status, "labels": {"alertname": "PaymentFailureRateHigh", "service": "payments",
                                                     "severity": "critical"},
                        "annotations": {"summary": "payments failing"}, "startsAt": "2026-01-15T08:58:00Z",
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/g", "fingerprint": "pay1"}]}


async def _post_alert(h: Harness, body: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=body,
                                                    headers=AUTH) as r:
        assert r.status == (202 if body["status"] == "firing" else 200), await r.text()
    await _quiet(h)


async def alerted(h: Harness, ctx: Ctx) -> None:
    """A second incident, opened by an Alertmanager alert: its header offers Silence."""
    await _post_alert(h, _payment_alert())
    incidents = await h.incidents()  # its own incident, or the open one it joined
    incident = next((i for i in incidents if i.id != ctx["incident_id"]), incidents[0])
    ctx["incident_id"], ctx["incident"] = incident.id, incident.channel_id


async def all_resolved(h: Harness, ctx: Ctx) -> None:
    """The alert incident's one alert resolved: the thread offers the lead Move to validation and Resolve."""
    await alerted(h, ctx)
    await _post_alert(h, _payment_alert("resolved"))
    await h.advance(0)  # the alert_notes timer writes the resolution and owes the all-resolved post
    await h.advance(0)


async def resolvable(h: Harness, ctx: Ctx) -> None:
    """All alerts resolved and every validation list ticked by its owner: Resolve may resolve."""
    await all_resolved(h, ctx)
    for checklist in h.bot.svc.runbook.validation:
        values = {f"{checklist.id}.{i + 1}" for i in range(len(checklist.items))}
        owner = (await h.bot.svc.roles.tier(checklist.owner, "primary"))[0]
        await h.bot.resolution.tick(ctx["incident_id"], checklist.id, values, values, owner)
    await _quiet(h)


async def parked(h: Harness, ctx: Ctx) -> None:
    """Work that failed every attempt: its notice in the thread offers Retry."""
    async def failing(incident_id: str, **_: Any) -> None:
        raise RuntimeError("the status page answered 503")

    if "test.matrix_probe" not in h.bot.svc.events.listeners("probe"):
        h.bot.svc.events.on("probe", failing, name="test.matrix_probe")
    await h.bot.svc.events.emit("probe", change=f"probe-{ctx['incident_id']}", incident_id=ctx["incident_id"])
    for _ in range(timers.MAX_ATTEMPTS + 2):
        await h.advance(timers.BACKOFF_CAP_S)


async def triaged(h: Harness, ctx: Ctx) -> None:
    alert = {"version": "4", "status": "firing", "receiver": "rollbot", "groupKey": "{}:{a=\"Lat\"}",
             "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
             "alerts": [{"status": "firing", "labels": {"alertname": "ApiLatencyP95High", "service": "api",
                                                        "severity": "warning"},
                         "annotations": {"summary": "p95 slow"}, "startsAt": "2026-01-15T08:58:00Z",
                         "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/g", "fingerprint": "lat1"}]}
    async with aiohttp.ClientSession() as s, s.post(f"{h.app_url}/alerts/alertmanager", json=alert,
                                                    headers=AUTH) as r:
        assert r.status in (200, 202), await r.text()  # 200: it opened nothing
    await _quiet(h)


# --- the table: every registered interaction ------------------------------------------------------------------------

STEP1_BUTTON = "Step 1:"
DATABASE_SCENARIO = "start database_only --level immediate --version v2.3.1 bad migration"
SCENARIO_PEOPLE: dict[str, str | None] = {"holder": DB2, "other_role": PF1, "requester": QA1}
RUN_PEOPLE: dict[str, str | None] = {"holder": DO2, "other_role": PF1, "requester": QA1}
TRAFFIC_PEOPLE: dict[str, str | None] = {"holder": TL2, "other_role": PF1, "requester": QA1}  # a Technical Lead's step
ROWS: dict[str, Row] = {
    # step checklists
    "checklist_tick": Row(button("checklist_tick", STEP1_BUTTON, value="item")),  # a manual task's item
    "step_done": Row(button("step_done", STEP1_BUTTON)),
    "step_skip": Row(button("step_skip", STEP1_BUTTON), changes=False),  # opens the reason form
    "view:step_skip": Row(submit({"reason": "not needed"}), setup=opens(button("step_skip", STEP1_BUTTON), OC1)),
    "incident_status": Row(button("incident_status", "Rollback incident"), changes=False),
    # the rollback decision
    "decision_approve": Row(button("decision_approve", "Rollback decision"), alone=True),  # the vote closes
    "decision_decline": Row(button("decision_decline", "Rollback decision"), changes=False),
    "view:approval_decline": Row(submit({"reason": "not yet"}),
                                 setup=opens(button("decision_decline", "Rollback decision"), TL1)),
    "decision_level": Row(button("decision_level", "Rollback decision", value="level")),
    # No longer rendered, and inert now that a deadline never closes the vote: even past the deadline the vote is
    # still open, so re-opening it changes nothing for anyone (older messages may still carry the button).
    "decision_reopen": Row(forged_button("decision_reopen", "decision_level", "Rollback decision", "request"), changes=False,
                           setup=decision_missed),
    # a destructive action's approval (requested by TL2, who holds Technical Lead)
    "action_approve": Row(button("action_approve", "Approval for "), setup=restore_requested),
    "action_decline": Row(button("action_decline", "Approval for "), changes=False, setup=restore_requested),
    # the typed confirmation: requested by DO1, who holds no approving role, so the requester rule alone lets them
    "action_confirm": Row(button("action_confirm", "Approval for "), setup=restore_requested),
    # a challenge is its opener's: the requester opened it, so they are the only one allowed to submit it
    "view:action_confirm_phrase": Row(submit({"phrase": "{phrase}"}), setup=confirmation_opened,
                                      people={"holder": DO1}),
    # runs
    # the database scenario's backup step (the scenario owner's: the Database Admin)
    "run_action": Row(button("run_action|emergency_backup", "Step 5.2"), changes=False, setup=rollback_approved,
                      people=SCENARIO_PEOPLE, declare=DATABASE_SCENARIO),  # opens the form
    "view:run_action": Row(submit({}), setup=chain(rollback_approved, opens(
        button("run_action|emergency_backup", "Step 5.2"), DB1)), people=SCENARIO_PEOPLE, declare=DATABASE_SCENARIO),
    # requested by an On-Call Engineer (who may run it, but is no lead): the requester rule alone lets them cancel
    "execution_cancel": Row(button("execution_cancel"), setup=restore_requested, people={"requester": OC1}),
    "execution_retry": Row(button("execution_retry"), setup=CACHE_RESET_FAILED, people=RUN_PEOPLE),
    "execution_skip": Row(button("execution_skip"), setup=CACHE_RESET_FAILED, people=RUN_PEOPLE, alone=True),
    **{k: Row(button(k), setup=TRAFFIC_HALTED, people=TRAFFIC_PEOPLE, alone=k != "traffic_rollback")
       for k in ("traffic_rollback", "traffic_retry", "traffic_continue")},
    "scenario_run": Row(button("scenario_run"), setup=chain(rollback_approved, scenario_offered),
                        declare=DATABASE_SCENARIO),
    # comms: the template's role only
    "comms_approve": Row(button("comms_approve", "Comms draft · Status page update")),
    "comms_edit": Row(button("comms_edit", "Comms draft · Status page update"), changes=False),
    "view:comms_edit": Row(submit({"text": "We rolled back."}),
                           setup=opens(button("comms_edit", "Comms draft · Status page update"), PM1)),
    "comms_sent": Row(button("comms_sent", "Comms draft · Status page update"), setup=draft_approved),
    "comms_approve_sent": Row(button("comms_approve_sent", "Comms draft · Status page update"),
                              alone=True),  # beside comms_approve, the draft would be approved already
    # validation and resolution
    "validation_tick": Row(button("validation_tick", "Validation: Technical Validation", value="check"),
                           setup=validation_posted),
    "validation_all": Row(button("validation_all", "Validation: Technical Validation"), setup=validation_posted,
                          alone=True),  # beside validation_tick, the first list would hold a tick already
    "/rollback resolve": Row(command('resolve --override "done by hand"'), alone=True),  # ends the incident
    "/rollback role": Row(command("role database_admin <@U600PF01>")),
    # people
    "page_ack": Row(button("page_ack", channel="dm"), setup=page_dm, people={"holder": DB1, "other_role": DB2,
                                                                             "requester": None}),
    "page_join": Row(button("page_join", channel="dm"), changes=False, setup=page_dm),
    # monitoring
    "alerts_silence": Row(button("alerts_silence", "Rollback incident"), setup=alerted),
    "alerts_resolved_validate": Row(button("alerts_resolved_validate"), setup=all_resolved, alone=True),
    "alerts_resolved_resolve": Row(button("alerts_resolved_resolve"), setup=resolvable, alone=True),
    # parked outbox work (bot/incidents/parked.py): the incident leads retry it
    "outbox_retry": Row(button("outbox_retry"), setup=parked, alone=True),
    "triage_declare": Row(button("triage_declare", channel="C0GENERAL"), changes=False, setup=triaged),
    # anyone: declare, drill, annotate, read
    "view:declare_incident": Row(submit({"description": "cart errors"}), repeatable=True,
                                 setup=opens(command("", channel="C0GENERAL"), DECLARER)),
    "shortcut:timeline_note": Row(note_shortcut(), repeatable=True),
    "/rollback note": Row(command("note saw errors"), repeatable=True),
    "/rollback timeline": Row(command("timeline"), changes=False),
    "/rollback modal": Row(command("", channel="C0GENERAL"), changes=False),
    "/rollback start": Row(command("start --level immediate cart down {n}", "C0GENERAL"), repeatable=True),
    "/rollback drill": Row(command("drill database", "C0GENERAL"), repeatable=True),
    "/rollback help": Row(command("help"), changes=False),
    "/rollback list": Row(command("list"), changes=False),
    "/rollback status": Row(command("status"), changes=False),
    "/rollback contacts": Row(command("contacts"), changes=False),
}


# --- what everyone sees, and what the clicker is told ----------------------------------------------------------

def _seen(h: Harness) -> Any:
    """Channel messages with their threads, and DMs (but the refusals a DM may carry): not the clicker's own
    ephemerals and forms."""
    state = h.state()

    def shown(channels: list[dict[str, Any]]) -> list[Any]:
        return [(c["id"], [(m["ts"], m["text"], m.get("blocks"), [(r["text"], r.get("blocks"))
                                                                   for r in m.get("replies", [])])
                           for m in c["messages"] if not m["text"].startswith(":no_entry:")]) for c in channels]
    return shown(state["channels"]), shown(state["dms"])


def _told(h: Harness, user: str) -> list[str]:
    """Everything `user` alone was told: ephemerals, errors shown on their forms, DMs from the bot."""
    state = h.state()
    said = [str(e.get("text", "")) for e in state["ephemerals"].get(user, [])]
    said += [json.dumps(v.get("errors")) for v in state["views"].get(user, []) if v.get("errors")]
    said += [m["text"] for c in state["dms"] if user in (c.get("members") or [c.get("user")])
             for m in c["messages"] if m["text"].startswith(":no_entry:")]
    return said


async def _refused_attempts(h: Harness) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.kind.endswith("_refused")))).all())  # type: ignore[attr-defined]


def _cast(interaction: str) -> dict[str, str | None]:
    _subject, people, _allowed = MATRIX[interaction]
    return {**people, **ROWS[interaction].people, "outsider": OUTSIDER, "declarer": DECLARER}


@asynccontextmanager
async def _alertmanager() -> AsyncIterator[str]:
    """Just enough of Alertmanager's API v2 for a silence to be created (in process, port 0)."""
    made: list[dict[str, Any]] = []

    async def silences(request: web.Request) -> web.Response:
        if request.method == "POST":
            made.append(await request.json())
            return web.json_response({"silenceID": f"s{len(made)}"})
        return web.json_response([])

    app = web.Application()
    app.router.add_route("*", "/api/v2/silences", silences)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def _incident_ready(tmp_path: Path, interaction: str, requester: str | None) -> AsyncIterator[tuple[Harness, Ctx]]:
    async with _alertmanager() as am, harness(tmp_path, ROLLBOT_ALERTMANAGER_URL=am,
                                              ROLLBOT_TRIAGE_CHANNEL="C0GENERAL") as h:
        await h.command(DECLARER, ROWS[interaction].declare)
        incident = await h.only_incident()
        await _quiet(h)
        levels = [lv.id for lv in h.bot.svc.runbook.levels]
        step = h.bot.svc.runbook.phases[0].steps[0]
        ctx: Ctx = {"incident_id": incident.id, "incident": incident.channel_id, "n": 0,
                    "level": next(lv for lv in levels if lv != incident.level), "check": "technical.1",
                    "item": f"{step.tasks[1].id}.1"}
        if requester:
            ctx["requester"] = requester
        row = ROWS[interaction]
        if row.setup:
            await row.setup(h, ctx)
        yield h, ctx


# --- the tests ------------------------------------------------------------------------------------------------------

async def test_every_registered_listener_has_a_row_in_the_matrix(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        registered = registered_interactions(h.bot)
    assert len(registered) > 40
    assert set(ROWS) == registered, ("listeners without a row:", sorted(registered - set(ROWS)),
                                     "rows without a listener:", sorted(set(ROWS) - registered))


@dataclass(frozen=True)
class Plan:
    interaction: str
    row: Row
    allowed: list[str]  # distinct users, the first of whom acts in the shared incident
    refused: list[str]


def _plan(interaction: str) -> Plan:
    _subject, _people, allowed = MATRIX[interaction]
    cast = _cast(interaction)
    personas = [p for p in PERSONAS if cast.get(p)]
    allowed_users = list(dict.fromkeys(str(cast[p]) for p in personas if p in allowed))
    refused_users = [str(cast[p]) for p in personas if p not in allowed and cast[p] not in allowed_users]
    return Plan(interaction, ROWS[interaction], allowed_users, refused_users)


def _groups() -> dict[str, list[str]]:
    """Rows whose incident is built the same way (declaration, setup, requester) share one incident: every cell
    but a state change is proven to change nothing, so it leaves the state exactly as the next row needs it. A row
    that must act in a state of its own (`alone`) gets its own incident."""
    keyed: dict[tuple[Any, ...], list[str]] = {}
    for interaction in sorted(ROWS):
        row = ROWS[interaction]
        requester = _cast(interaction).get("requester") if row.setup else None  # only setups use it
        key = (row.declare, row.setup, requester, interaction if row.alone else "")
        keyed.setdefault(key, []).append(interaction)
    return {group[0]: group for group in keyed.values()}


GROUPS = _groups()


async def _refused_cells(h: Harness, ctx: Ctx, plan: Plan) -> None:
    """Every refused cell of the row changes nothing in the database or in Slack, is told who can, and (only
    they) go on the timeline."""
    before_db, before_slack = await _database(h), _seen(h)
    earlier = {e.id for e in await _refused_attempts(h)}
    for user in plan.refused:
        told = len(_told(h, user))
        await plan.row.act(h, ctx, user)
        assert await _database(h) == before_db, f"{plan.interaction}: {user}'s refused attempt changed the database"
        assert _seen(h) == before_slack, f"{plan.interaction}: {user}'s refused attempt changed Slack"
        news = _told(h, user)[told:]
        assert news and any("<@U" in n for n in news), \
            f"{plan.interaction}: {user} was not told who can do it instead: {news}"
    refusals = [e for e in await _refused_attempts(h) if e.id not in earlier]
    assert sorted({e.actor or "" for e in refusals}) == sorted(set(plan.refused)), \
        f"{plan.interaction}: every refused attempt, and only those, goes on the timeline"


async def _allowed_cell(h: Harness, ctx: Ctx, plan: Plan, user: str) -> None:
    ctx["n"] += 1
    seen_db, seen_slack = await _database(h), _seen(h)
    shown = len(_told(h, user)) + len(h.state()["views"].get(user, []))
    await plan.row.act(h, ctx, user)
    changed = await _database(h) != seen_db or _seen(h) != seen_slack
    assert changed == plan.row.changes, \
        f"{plan.interaction}: {user} (allowed) {'changed' if changed else 'changed nothing'}"
    if not plan.row.changes and plan.interaction not in ("page_join",):  # a link button: Slack opens the URL
        assert len(_told(h, user)) + len(h.state()["views"].get(user, [])) > shown, \
            f"{plan.interaction}: {user} (allowed) was shown nothing"


@pytest.mark.parametrize("first", sorted(GROUPS))
async def test_exactly_the_allowed_cells_change_state(tmp_path: Path, first: str) -> None:
    """One incident per group of rows built alike: first every row's refused cells, then the inert rows' allowed
    cells (each proven to change nothing, so the state is still the one the refusals saw), then each state-changing
    row's first allowed cell, in turn (each proven to change state; `alone` rows whose change would stop a later
    one are in a group of their own). A non-repeatable row's other allowed people each get a fresh incident."""
    plans = [_plan(i) for i in GROUPS[first]]
    requester = _cast(first).get("requester") if ROWS[first].setup else None
    async with _incident_ready(tmp_path, first, requester) as (h, ctx):
        for plan in plans:
            await _refused_cells(h, ctx, plan)
        for plan in [p for p in plans if not p.row.changes]:
            for user in plan.allowed:
                await _allowed_cell(h, ctx, plan, user)
        for plan in [p for p in plans if p.row.changes]:
            for user in plan.allowed if plan.row.repeatable else plan.allowed[:1]:
                await _allowed_cell(h, ctx, plan, user)
    for n, plan in enumerate(p for p in plans if p.row.changes and not p.row.repeatable):
        for user in plan.allowed[1:]:  # each in a state of their own
            where = tmp_path / f"{n}-{user}"
            where.mkdir()
            async with _incident_ready(where, plan.interaction, requester) as (h, ctx):
                seen_db, seen_slack = await _database(h), _seen(h)
                await plan.row.act(h, ctx, user)
                assert await _database(h) != seen_db or _seen(h) != seen_slack, \
                    f"{plan.interaction}: {user} changed nothing"
