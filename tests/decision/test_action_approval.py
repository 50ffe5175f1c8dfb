"""A destructive action (the database restore, `--confirm-data-loss`) needs its own policy (Technical Lead AND
Database Admin) and the typed confirmation phrase (the restore point), checked on the server against a
challenge bound to the request and the user, single use, expiring after five minutes. End to end: the
executions engine asks the gate, clicks and modal submissions come from the Slack sandbox over real HTTP."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from sqlmodel import select

from bot.decision.views import ACTION_APPROVE, ACTION_CONFIRM, ACTION_DECLINE, APPROVE
from bot.store.models import ConfirmationChallenge, Execution, Incident
from tests.decision.support import EventLog, action_ids, click, declare, ephemerals, kinds, message
from tests.support.harness import Harness, harness

TL1, DB1, OUT, OC1, TL2 = "U100TL01", "U300DB01", "U900OUT1", "U500OC01", "U100TL02"
RESTORE_POINT = (Path(__file__).resolve().parents[2] / "examples" / "launch" / "last-stable-db-backup.txt").read_text().strip()


@pytest.fixture(autouse=True)
def fast_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBOT_SCRIPT_SPEED", "100")  # the sample restore script's pauses, 100 times shorter


async def approved_incident_with_a_restore_request(h: Harness) -> tuple[Incident, Execution, str]:
    """An approved rollback, then a Run of the database restore (Step 5) by the On-Call Engineer (an incident lead),
    so that the Technical Lead and Database Admin who approve it are not its requester."""
    incident = await declare(h, "immediate")
    await click(h, incident, "decision", TL1, APPROVE)
    await h.settle()
    await h.bot.executions.idle()  # the snapshot the approval started: a restore runs only after it succeeded
    requested = await h.bot.executions.request(incident.id, "application_rollback", "database_rollback_run",
                                               "rollback_database", OC1)
    await h.settle()
    execution = requested.execution
    assert execution.state == "requested" and execution.params["restore_point"] == RESTORE_POINT
    return incident, execution, f"approval:execution:{execution.id}"


async def execution_state(h: Harness, execution_id: str) -> str:
    async with h.bot.db.session() as session:
        row = await session.get(Execution, execution_id)
        assert row is not None
        return row.state


async def open_modal(h: Harness, incident: Incident, key: str, user: str) -> dict:
    before = len(h.state()["views"].get(user, []))
    await click(h, incident, key, user, ACTION_CONFIRM)
    views = h.state()["views"].get(user, [])
    assert len(views) == before + 1, ephemerals(h, user)
    return views[-1]


async def submit(h: Harness, user: str, view: dict, phrase: str) -> dict:
    result = await h.sb.submit(user, view["id"], {"phrase": phrase})
    await h.settle()
    return result


async def test_the_restore_runs_only_with_both_roles_and_the_right_phrase_typed_in_time_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        log = EventLog(h, "action_approved", "action_declined")
        incident, execution, key = await approved_incident_with_a_restore_request(h)
        posted = await message(h, incident, key)
        assert not posted.get("thread_ts"), "its own message in the channel, not a reply in the header's thread"
        told = {dm["user"]: [m["text"] for m in dm["messages"] if "Your approval is needed" in m["text"]]
                for dm in h.state()["dms"]}
        assert {u for u, texts in told.items() if texts} == {TL1, DB1}, told  # each approver told by DM
        assert all(len(texts) <= 1 for texts in told.values()), "once, however often the request re-renders"
        assert "Technical Lead + Database Admin" in str(posted["blocks"]) and RESTORE_POINT in str(posted["blocks"])
        assert action_ids(posted) == [ACTION_APPROVE, ACTION_DECLINE, ACTION_CONFIRM]

        await click(h, incident, key, OUT, ACTION_CONFIRM)  # neither the requester nor an approver
        assert "Only the Technical Lead or Database Admin" in ephemerals(h, OUT)[-1]
        assert not h.state()["views"].get(OUT)

        view = await open_modal(h, incident, key, TL1)
        wrong = await submit(h, TL1, view, "backup-19990101-0000")
        assert wrong["body"]["response_action"] == "errors"
        assert "not the confirmation phrase" in wrong["body"]["errors"]["phrase"]

        h.clock.advance(301)  # the challenge lives five minutes
        expired = await submit(h, TL1, view, RESTORE_POINT)
        assert "expired" in expired["body"]["errors"]["phrase"]

        view = await open_modal(h, incident, key, TL1)
        replay = copy.deepcopy(view)
        right = await submit(h, TL1, view, f"  {RESTORE_POINT} ")
        assert right["status"] == 200 and not right["body"], "accepted: the modal closes"
        h.sb.ws.views.setdefault(TL1, []).append(replay)  # the same submission, sent again
        reused = await submit(h, TL1, replay, RESTORE_POINT)
        assert "already used" in reused["body"]["errors"]["phrase"]

        shown = await message(h, incident, key)
        assert f"typed by <@{TL1}>" in str(shown["blocks"]) and ACTION_CONFIRM not in action_ids(shown)
        assert await execution_state(h, execution.id) == "requested", "the phrase alone approves nothing"

        await click(h, incident, key, TL1, ACTION_APPROVE)
        assert await execution_state(h, execution.id) == "requested", "Technical Lead alone: Database Admin missing"
        await click(h, incident, key, DB1, ACTION_APPROVE)  # DB1 holds Database Admin through the S300DBA group
        assert log.of("action_approved") == [{"incident_id": incident.id, "execution_id": execution.id}]
        finished = await h.bot.executions.wait(execution.id)
        assert finished.state == "succeeded", finished.output
        assert action_ids(await message(h, incident, key)) == []

        counted = await kinds(h, incident.id)
        assert counted["confirmation_refused"] == 4  # outsider, wrong, expired, reused
        assert counted["confirmation_typed"] == 1 and counted["action_approved"] == 1
        async with h.bot.db.session() as session:
            challenges = (await session.exec(select(ConfirmationChallenge))).all()
        assert len(challenges) == 2 and all(c.user_id == TL1 for c in challenges)
        assert all(RESTORE_POINT not in c.phrase_sha256 for c in challenges), "only the digest is stored"
        assert log.count("action_declined") == 0


async def test_a_database_admin_declining_cancels_the_restore(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        log = EventLog(h, "action_declined")
        incident, execution, key = await approved_incident_with_a_restore_request(h)
        await click(h, incident, key, DB1, ACTION_DECLINE)
        [view] = h.state()["views"][DB1]
        await h.sb.submit(DB1, view["id"], {"reason": "no corruption found: restore not needed"})
        await h.settle()
        assert log.of("action_declined") == [{"incident_id": incident.id, "execution_id": execution.id}]
        assert await execution_state(h, execution.id) == "cancelled"
        shown = await message(h, incident, key)
        assert action_ids(shown) == [] and "no corruption found" in str(shown["blocks"])


async def test_an_action_approval_past_a_deadline_still_takes_votes_which_count_marked_late(tmp_path: Path) -> None:
    from datetime import timedelta

    from bot.store.models import ApprovalRequest, TimelineEvent

    async with harness(tmp_path) as h:
        incident, execution, key = await approved_incident_with_a_restore_request(h)
        async with h.bot.db.session() as session:
            request = (await session.exec(select(ApprovalRequest).where(
                ApprovalRequest.subject == f"execution:{execution.id}"))).one()
            request.deadline_at = h.clock.now() - timedelta(minutes=3)  # a deadline that passed
            request_id = request.id
        await click(h, incident, key, TL1, ACTION_APPROVE)
        await click(h, incident, key, DB1, ACTION_APPROVE)
        view = await open_modal(h, incident, key, TL1)
        await submit(h, TL1, view, RESTORE_POINT)
        await h.bot.executions.idle()
        assert (await h.bot.approvals.get(request_id)).status == "approved", "late votes count"
        assert await execution_state(h, execution.id) == "succeeded"
        async with h.bot.db.session() as session:
            votes = (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "vote"))).all()
        late = [e for e in votes if e.data.get("request") == request_id]
        assert len(late) == 2 and all(e.data.get("late") for e in late) and all("late: 3m" in e.text for e in late)


async def test_the_requester_never_counts_as_one_of_the_approvers(tmp_path: Path) -> None:
    """Four eyes: the Technical Lead who ran the restore holds a role its approval needs, but their own Approve is
    refused (audited, no vote); the other Technical Lead and the Database Admin approve it."""
    async with harness(tmp_path) as h:
        log = EventLog(h, "action_approved")
        incident = await declare(h, "immediate")
        await click(h, incident, "decision", TL1, APPROVE)
        await h.settle()
        await h.bot.executions.idle()  # the snapshot the approval started: a restore runs only after it succeeded
        requested = await h.bot.executions.request(incident.id, "application_rollback", "database_rollback_run",
                                                   "rollback_database", TL1)
        await h.settle()
        key = f"approval:execution:{requested.execution.id}"
        await click(h, incident, key, TL1, ACTION_APPROVE)
        refusal = ephemerals(h, TL1)[-1]
        assert refusal.startswith(":no_entry: You requested this") and f"<@{TL2}>" in refusal
        assert f"<@{TL1}>" not in refusal.split("requested this", 1)[1], "the requester is not offered as approver"
        request_id = (await message(h, incident, key))["blocks"][-1]["elements"][0]["value"]
        assert await h.bot.approvals.votes(request_id) == []
        assert (await kinds(h, incident.id))["approval_refused"] == 1
        await click(h, incident, key, TL2, ACTION_APPROVE)
        await click(h, incident, key, DB1, ACTION_APPROVE)
        assert [v.user_id for v in await h.bot.approvals.votes(request_id)] == [TL2, DB1]
        assert log.count("action_approved") == 0, "the typed confirmation is still missing"
