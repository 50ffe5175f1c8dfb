"""The authorization table against the app itself: every action_id, view callback, shortcut and /rollback
subcommand the Bolt app registers has exactly one rule, and — by real user IDs resolved through the roster, user
groups and overrides — exactly the allowed people pass it, for every interaction x {role holder, other role,
outsider, declarer, requester}. The same cells through Slack, each interaction performed for real, are in
test_matrix.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, select

from bot.app import Rollbot
from bot.core import authz
from bot.core.authz import RULES, Subject, interaction_key
from bot.core.errors import Refused
from bot.store.models import CommsDraft, Incident, TimelineEvent
from handlers.commands import SUBCOMMANDS
from tests.support.harness import Harness, harness

TL1, TL2, OC1, OC2, DO1, DO2 = "U100TL01", "U100TL02", "U500OC01", "U500OC02", "U200DO01", "U200DO02"
DB1, DB2, QA1, PF1, PM1, PM2 = "U300DB01", "U300DB02", "U400QA01", "U600PF01", "U700PM01", "U700PM02"
OUTSIDER, DECLARER = "U900OUT1", "U820BD01"  # no role; a board member (a role no rule names) who declares
PERSONAS = ("holder", "other_role", "outsider", "declarer", "requester")


def registered_interactions(bot: Rollbot) -> set[str]:
    """Read back from the Bolt app what it listens to (so a new listener cannot be left out of this test)."""
    found: set[str] = set()
    for listener in bot.bolt._async_listeners:
        for matcher in listener.matchers:
            for cell in matcher.func.__closure__ or ():  # type: ignore[attr-defined]
                inner = cell.cell_contents
                if not callable(inner) or not getattr(inner, "__closure__", None):
                    continue
                kind = inner.__qualname__.split(".")[0]
                constraint = next(c.cell_contents for c in inner.__closure__
                                  if isinstance(c.cell_contents, str | re.Pattern))
                name = constraint.pattern.lstrip("^").replace("\\|", "|") if isinstance(constraint, re.Pattern) \
                    else constraint
                if kind == "action":
                    found.add(interaction_key("action", name))
                elif kind in ("view_submission", "view"):
                    found.add(interaction_key("view", name))
                elif kind == "shortcut":
                    found.add(interaction_key("shortcut", name))
                elif kind == "command":
                    assert name == "/rollback"
                    found |= {interaction_key("command", sub) for sub in SUBCOMMANDS}
                else:
                    assert kind == "event", kind  # events are not people acting on the procedure
    return found


# interaction -> (the subject clicked, {persona: user}, the personas allowed). Outsider and declarer are fixed.
STEP1 = Subject("", step_owner="on_call_engineer")
RUN = Subject("", step_owner="devops_lead", requester=QA1)
DECISION = Subject("", policy_roles=("technical_lead",), requester=DECLARER)
ACTION = Subject("", policy_roles=("technical_lead", "database_admin"), requester=TL2)
CONFIRM = Subject("", policy_roles=("technical_lead", "database_admin"), requester=DO1)
COMMS = Subject("", template_role="product_manager")
LEADS = Subject("")
ANYONE = (Subject(""), {"holder": PF1, "other_role": DB1, "requester": None}, set(PERSONAS) - {"requester"})
MATRIX: dict[str, tuple[Subject, dict[str, str | None], set[str]]] = {
    **{k: (STEP1, {"holder": OC2, "other_role": PF1, "requester": None}, {"holder"})
       for k in ("checklist_tick", "step_done", "step_skip", "view:step_skip")},
    **{k: (DECISION, {"holder": TL1, "other_role": PF1, "requester": DECLARER}, {"holder"})
       for k in ("decision_approve", "decision_decline", "view:approval_decline")},
    **{k: (DECISION, {"holder": OC1, "other_role": DB1, "requester": DECLARER}, {"holder"})
       for k in ("decision_level", "decision_reopen")},
    # four eyes: TL2 holds Technical Lead but requested the action
    **{k: (ACTION, {"holder": DB2, "other_role": PF1, "requester": TL2}, {"holder"})
       for k in ("action_approve", "action_decline")},
    **{k: (CONFIRM, {"holder": TL1, "other_role": PF1, "requester": DO1}, {"holder", "requester"})
       for k in ("action_confirm", "view:action_confirm_phrase")},
    **{k: (RUN, {"holder": DO2, "other_role": PF1, "requester": QA1}, {"holder"})
       for k in ("run_action", "view:run_action", "execution_retry", "execution_skip", "traffic_rollback",
                 "traffic_retry", "traffic_continue")},
    "execution_cancel": (RUN, {"holder": DO2, "other_role": PF1, "requester": QA1}, {"holder", "requester"}),
    "scenario_run": (Subject("", scenario_owner="database_admin"), {"holder": DB2, "other_role": PF1,
                                                                     "requester": None}, {"holder"}),
    # an incident lead is not the Product Manager: only the template's role touches comms
    **{k: (COMMS, {"holder": PM2, "other_role": TL1, "requester": None}, {"holder"})
       for k in ("comms_approve", "comms_edit", "view:comms_edit", "comms_sent", "comms_approve_sent")},
    **{k: (Subject("", validation_owner="qa_lead"), {"holder": QA1, "other_role": PF1, "requester": None}, {"holder"})
       for k in ("validation_tick", "validation_all")},
    "/rollback resolve": (LEADS, {"holder": TL1, "other_role": PF1, "requester": None}, {"holder"}),
    # a DevOps Lead holds a role but cannot hand roles out
    "/rollback role": (LEADS, {"holder": OC1, "other_role": DO1, "requester": None}, {"holder"}),
    "page_ack": (Subject("", paged=DB1), {"holder": DB1, "other_role": DB2, "requester": None}, {"holder"}),
    **{k: ANYONE for k in ("incident_status", "page_join", "view:declare_incident", "shortcut:timeline_note",
                           "/rollback note", "/rollback timeline", "/rollback modal", "/rollback start",
                           "/rollback drill", "/rollback help", "/rollback list", "/rollback status",
                           "/rollback contacts", "triage_declare")},
    # silencing an incident's alerts in Alertmanager: the incident lead roles
    "alerts_silence": (LEADS, {"holder": TL1, "other_role": PF1, "requester": None}, {"holder"}),
    "alerts_resolved_validate": (LEADS, {"holder": TL1, "other_role": PF1, "requester": None}, {"holder"}),
    "alerts_resolved_resolve": (LEADS, {"holder": TL1, "other_role": PF1, "requester": None}, {"holder"}),
    # retrying parked work (a failure notice in the incident thread): the incident lead roles
    "outbox_retry": (LEADS, {"holder": TL1, "other_role": PF1, "requester": None}, {"holder"}),
}


async def _declared(h: Harness) -> Incident:
    await h.command(DECLARER, "start --level immediate --version v2.3.1 checkout errors after deploy")
    return await h.only_incident()


async def test_every_registered_interaction_has_one_rule_and_a_row_here(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        registered = registered_interactions(h.bot)
        assert len(registered) > 40, sorted(registered)
        assert registered == set(RULES), (sorted(registered - set(RULES)), sorted(set(RULES) - registered))
        assert set(MATRIX) == set(RULES), sorted(set(RULES) ^ set(MATRIX))


async def test_exactly_the_allowed_cells_pass_every_rule(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _declared(h)
        wrong: list[str] = []
        for interaction, (subject, people, allowed) in sorted(MATRIX.items()):
            subject = Subject(incident.id, **{k: v for k, v in vars(subject).items() if k != "incident_id"})
            cast = {**people, "outsider": OUTSIDER, "declarer": DECLARER}
            for persona in PERSONAS:
                user = cast.get(persona)
                if user is None:
                    continue
                passed = bool(await authz.allowed(h.bot.svc, interaction, user, subject))
                if passed != (persona in allowed):
                    wrong.append(f"{interaction} x {persona} ({user}): {'passed' if passed else 'refused'}")
        assert wrong == []


# --- what the matrix (test_matrix.py) and the forged-payload test compare -------------------------------------

async def _database(h: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, except the refused attempts the timeline is meant to gain."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    async with h.bot.db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            rows = list((await session.exec(sa_select(table))).all())  # type: ignore[call-overload]
            if table.name == TimelineEvent.__tablename__:
                rows = [r for r in rows if not str(r._mapping["kind"]).endswith("_refused")]
            dump[table.name] = sorted(tuple(str(v) for v in r) for r in rows)
    return dump


def _slack(h: Harness) -> Any:
    """What everyone sees: channel messages with their threads, and open modals (not the clicker's ephemerals)."""
    state = h.state()
    return ([(c["id"], [(m["ts"], m["text"], m.get("blocks"), [(r["text"], r.get("blocks"))
                                                                 for r in m.get("replies", [])])
                         for m in c["messages"]]) for c in state["channels"]], state.get("views"))


def _message(h: Harness, incident: Incident, starts: str) -> dict[str, Any]:
    channel = incident.channel_id or ""
    every = [m for m in h.messages(channel)] + [r for m in h.messages(channel) for r in m.get("replies", [])]
    return next(m for m in every if starts in m["text"])


async def _events(h: Harness, incident: Incident) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(TimelineEvent.incident_id == incident.id))).all())


async def _refusals(h: Harness, incident: Incident) -> list[TimelineEvent]:
    async with h.bot.db.session() as session:
        return list((await session.exec(select(TimelineEvent).where(
            TimelineEvent.incident_id == incident.id, TimelineEvent.kind.endswith("_refused")))).all())  # type: ignore[attr-defined]


async def test_comms_approval_is_bound_to_the_text_and_an_edit_sends_it_back(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await _declared(h)
        channel = incident.channel_id or ""
        shown = _message(h, incident, "Comms draft · Status page update")
        await h.click(PM1, channel, shown["ts"], action_id="comms_edit")
        view = h.sb.ws.views[PM1][-1]
        await h.click(PM2, channel, shown["ts"], action_id="comms_approve")  # PM2 approves the original text
        await h.sb.submit(PM1, view["id"], {"text": "Changed after approval."})
        await h.settle()
        async with h.bot.db.session() as session:
            draft = (await session.exec(select(CommsDraft).where(CommsDraft.template_id == "status_page_update"))).one()
        assert draft.status == "draft" and draft.approved_by is None and draft.text == "Changed after approval."
        current = _message(h, incident, "Comms draft · Status page update")
        assert "Approve" in str(current["blocks"]), "back for approval"
        # The first version's Approve value, replayed: refused, the draft stays unapproved.
        first = next(b for b in shown["blocks"] if b.get("type") == "actions")["elements"][0]["value"]
        with pytest.raises(Refused, match="changed"):
            await h.bot.comms.approve(draft.id or 0, PM2, first.split("|")[1])
        async with h.bot.db.session() as session:
            again = await session.get(CommsDraft, draft.id)
        assert again is not None and again.status == "draft"
        kinds = [e.kind for e in await _events(h, incident)]
        assert kinds.count("comms_approved") == 1 and "withdrawn" in str(
            [e.text for e in await _events(h, incident) if e.kind == "comms_edited"])
