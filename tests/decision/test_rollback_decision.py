"""The rollback decision end to end: /rollback and clicks from the Slack sandbox over real HTTP, a real database,
a FakeClock moved instead of sleeping. Each level's policy (immediate: TL or DevOps; urgent: TL + DevOps;
consideration: TL + PM), refusals, one person per slot, the declarer, concurrency, deadlines, level changes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from bot.decision.views import APPROVE, CHANGE_LEVEL, DECLINE
from bot.store.models import ApprovalRequest, Page, RoleOverride, StepState, TimelineEvent, Timer
from tests.decision.support import (
    EventLog,
    action_ids,
    click,
    declare,
    ephemerals,
    kinds,
    message,
    refreshed,
    rollback_request,
    timeline_texts,
    votes,
)
from tests.support.harness import Harness, harness

TL1, TL2, DO1, DO2, PM1, OUT = "U100TL01", "U100TL02", "U200DO01", "U200DO02", "U700PM01", "U900OUT1"
DEADLINES = {"immediate": 2, "urgent": 5, "consideration": 10}


async def step_status(h: Harness, incident_id: str, step_id: str) -> str:
    async with h.bot.db.session() as session:
        state = (await session.exec(select(StepState).where(
            StepState.incident_id == incident_id, StepState.step_id == step_id))).one()
        return state.status


@pytest.mark.parametrize(("level", "clicks"), [
    ("immediate", [(TL1, "approved")]),
    ("immediate", [(DO2, "approved")]),  # DO2 holds DevOps Lead through the S100DEVOPS user group
    ("urgent", [(TL1, "pending"), (DO1, "approved")]),
    ("consideration", [(TL1, "pending"), (DO1, "refused"), (PM1, "approved")]),
])
async def test_each_level_is_approved_by_exactly_its_policy_and_an_outsider_is_refused(
        tmp_path: Path, level: str, clicks: list[tuple[str, str]]) -> None:
    """The right people decide; U900OUT1 (no role) gets an ephemeral naming the roles that can approve and who
    holds them, and nothing but an audit event is recorded. Once approved, the flow moves on to Phase 2."""
    async with harness(tmp_path) as h:
        log = EventLog(h, "decided")
        incident = await declare(h, level)
        request = await rollback_request(h, incident.id)
        assert request.deadline_at == incident.declared_at + timedelta(minutes=DEADLINES[level])
        assert action_ids(await message(h, incident, "decision")) == [APPROVE, DECLINE, CHANGE_LEVEL]

        await click(h, incident, "decision", OUT, APPROVE)
        await click(h, incident, "decision", OUT, DECLINE)
        said = ephemerals(h, OUT)
        assert len(said) == 2
        for text in said:
            assert text.startswith(":no_entry: Only the Technical Lead or ")
            assert f"<@{TL1}>" in text and f"<@{TL2}>" in text
            assert (f"<@{PM1}>" in text) == (level == "consideration")
        assert not h.state()["views"].get(OUT), "no reason modal for someone who may not decline"
        assert await votes(h, request.id) == []
        assert (await kinds(h, incident.id))["approval_refused"] == 2

        # Phase 2 starts once the whole of Phase 1 is done: Step 1 by its owner, Step 2 by the decision.
        assert await h.bot.checklists.complete_step(incident.id, "incident_detection", "U500OC01", "done")
        h.clock.advance(30)
        for user, expected in clicks:
            await click(h, incident, "decision", user, APPROVE)
            status = (await h.bot.approvals.get(request.id)).status
            if expected == "refused":
                assert status == "pending" and ephemerals(h, user)[-1].startswith(":no_entry: Only the Technical Lead")
                assert user not in {v.user_id for v in await votes(h, request.id)}
            else:
                assert status == expected, (user, ephemerals(h, user))
        decided = await refreshed(h, incident.id)
        now = h.clock.now()
        assert (decided.decision, decided.stage, decided.decided_at, decided.rollback_started_at) == (
            "approved", "rolling_back", now, now)
        assert decided.phase_id == "pre_rollback_preparation"
        assert await step_status(h, incident.id, "rollback_decision") == "done"
        assert log.of("decided") == [{"incident_id": incident.id, "decision": "approved"}]
        shown = await message(h, incident, "decision")
        assert action_ids(shown) == [] and "Rollback approved" in str(shown["blocks"])
        assert (await kinds(h, incident.id))["decided"] == 1
        approvers = [u for u, outcome in clicks if outcome != "refused"]
        assert [v.user_id for v in await votes(h, request.id)] == approvers
        await h.advance(61)  # the follow-up's safety-net timer finds it done and does nothing
        assert log.count("decided") == 1


async def test_a_decision_whose_follow_up_was_lost_is_finished_once_by_the_durable_timer(tmp_path: Path) -> None:
    """The deciding vote commits, then its process dies before announcing it (follow_up=False stands in for the
    crash): the timer written with the decision completes the decision step and emits `decided`, once."""
    async with harness(tmp_path) as h:
        log = EventLog(h, "decided")
        incident = await declare(h, "urgent")
        request = await rollback_request(h, incident.id)
        await click(h, incident, "decision", TL1, APPROVE)
        result = await h.bot.approvals.vote(request.id, DO1, "approve", follow_up=False)
        assert result.kind == "decided" and (await refreshed(h, incident.id)).decision == "approved"
        await h.advance(59)
        assert log.count("decided") == 0 and await step_status(h, incident.id, "rollback_decision") == "active"
        await h.advance(2)
        assert log.of("decided") == [{"incident_id": incident.id, "decision": "approved"}]
        assert await step_status(h, incident.id, "rollback_decision") == "done"
        assert action_ids(await message(h, incident, "decision")) == []
        await h.advance(120)
        assert log.count("decided") == 1


async def test_one_person_holding_both_roles_fills_one_slot_only(tmp_path: Path) -> None:
    """TL1 is given DevOps Lead for this incident too: alone, TL1 cannot satisfy TL + DevOps; with TL2 (who holds
    Technical Lead only) the assignment puts TL1 in the DevOps slot and TL2 in the Technical Lead slot."""
    async with harness(tmp_path) as h:
        incident = await declare(h, "urgent")
        assert incident.channel_id
        refused = await h.command(OUT, f"role technical_lead <@{OUT}>", incident.channel_id)
        assert "Only the Technical Lead or On-Call Engineer can give someone a role" in refused["body"]["text"]
        # A role holder who is not an incident lead cannot hand out roles, not even their own.
        refused = await h.command("U200DO01", f"role devops_lead <@{OUT}>", incident.channel_id)
        assert refused["body"]["text"].startswith(":no_entry: Only the Technical Lead or On-Call Engineer")
        given = await h.command(TL1, f"role devops_lead <@{TL1}|tara>", incident.channel_id)
        assert "now holds DevOps Lead" in given["body"]["text"]
        async with h.bot.db.session() as session:
            overrides = (await session.exec(select(RoleOverride))).all()
        assert [(o.role, o.user_id, o.set_by) for o in overrides] == [("devops_lead", TL1, TL1)]
        counted = await kinds(h, incident.id)
        assert counted["role_override"] == 1 and counted["role_override_refused"] == 2
        request = await rollback_request(h, incident.id)
        await click(h, incident, "decision", TL1, APPROVE)
        [vote] = await votes(h, request.id)
        assert vote.roles == ["technical_lead", "devops_lead"]
        assert (await h.bot.approvals.get(request.id)).status == "pending"
        assert "Still needed" in ephemerals(h, TL1)[-1]
        await click(h, incident, "decision", TL2, APPROVE)
        assert (await refreshed(h, incident.id)).decision == "approved"
        decided = (await timeline_texts(h, incident.id, "decided"))[0]
        assert f"<@{TL1}> (DevOps Lead)" in decided and f"<@{TL2}> (Technical Lead)" in decided


async def test_the_declarer_cannot_self_approve_a_two_person_rollback(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        incident = await declare(h, "urgent", user=TL1)
        request = await rollback_request(h, incident.id)
        assert request.requested_by == TL1
        await click(h, incident, "decision", TL1, APPROVE)
        await click(h, incident, "decision", TL1, APPROVE)
        assert "already voted" in ephemerals(h, TL1)[-1]
        assert len(await votes(h, request.id)) == 1
        assert (await h.bot.approvals.get(request.id)).status == "pending"
        assert "Waiting for: DevOps Lead" in str((await message(h, incident, "decision"))["blocks"])
        await click(h, incident, "decision", DO1, APPROVE)
        assert (await h.bot.approvals.get(request.id)).status == "approved"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_fifty_concurrent_approve_clicks_decide_once_with_one_vote_per_person(
        tmp_path: Path, backend: str) -> None:
    async with harness(tmp_path, backend) as h:
        log = EventLog(h, "decided")
        incident = await declare(h, "urgent")
        assert incident.channel_id
        ts = (await message(h, incident, "decision"))["ts"]
        people = [TL1, TL2, DO1, DO2, OUT]
        clickers = [people[i % len(people)] for i in range(50)]
        results = await asyncio.gather(*(h.sb.click(u, incident.channel_id, ts, action_id=APPROVE) for u in clickers))
        await h.settle()
        assert {r["status"] for r in results} == {200}
        request = await rollback_request(h, incident.id)
        cast = await votes(h, request.id)
        voters = [v.user_id for v in cast]
        assert len(voters) == len(set(voters)), "one vote per person"
        assert OUT not in voters and len(voters) >= 2
        assert {"technical_lead", "devops_lead"} <= {r for v in cast for r in v.roles}
        assert request.status == "approved"
        assert (await refreshed(h, incident.id)).decision == "approved"
        counted = await kinds(h, incident.id)
        assert counted["decided"] == 1 and log.count("decided") == 1
        assert counted["approval_refused"] == 10
        assert counted["vote"] == len(voters)
        assert counted["vote_ignored"] >= 1, "clicks that arrive after the decision are audited, not counted"
        decision_done = [t for t in await timeline_texts(h, incident.id, "step_done") if "Rollback Decision" in t]
        assert len(decision_done) == 1, "the decision step completes once"
        assert action_ids(await message(h, incident, "decision")) == []


async def test_an_overdue_decision_still_accepts_a_vote_which_counts_and_the_overdue_fires_once(
        tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        log = EventLog(h, "decision_overdue", "decided")
        incident = await declare(h, "urgent")
        request = await rollback_request(h, incident.id)
        await click(h, incident, "decision", TL1, APPROVE)
        h.clock.advance(5 * 60 + 1)  # past the deadline
        assert await h.advance(0) >= 1  # the deadline timer fires
        for _ in range(3):
            await h.advance(60)
        assert log.count("decision_overdue") == 1
        counted = await kinds(h, incident.id)
        assert counted["decision_overdue"] == 1
        assert incident.channel_id
        overdue = [m for m in h.messages(incident.channel_id) if "decision is overdue" in m.get("text", "")]
        assert len(overdue) == 1 and f"<@{DO2}>" in overdue[0]["text"] and f"<@{TL1}>" in overdue[0]["text"]
        shown = await message(h, incident, "decision")
        assert action_ids(shown) == [APPROVE, DECLINE, CHANGE_LEVEL], "Approve and Decline stay live when overdue"
        assert "OVERDUE" in str(shown["blocks"]) and "Overdue by" in str(shown["blocks"])
        assert (await h.bot.approvals.get(request.id)).status == "pending"
        async with h.bot.db.session() as session:
            pages = (await session.exec(select(Page).where(Page.incident_id == incident.id,
                                                           Page.tier == "secondary"))).all()
        assert {(p.role, p.user_id) for p in pages} >= {("technical_lead", TL2), ("devops_lead", DO2)}, \
            "the approvers' secondaries are paged at the deadline"
        assert ("devops_lead", DO1) not in {(p.role, p.user_id) for p in pages}, "a primary is not their own backup"

        await click(h, incident, "decision", DO1, APPROVE)  # 3 min after the deadline: it counts
        decided = await h.bot.approvals.get(request.id)
        assert decided.status == "approved"
        assert (await refreshed(h, incident.id)).decision == "approved"
        assert [v.user_id for v in await votes(h, request.id)] == [TL1, DO1]
        async with h.bot.db.session() as session:
            late = (await session.exec(select(TimelineEvent).where(
                TimelineEvent.incident_id == incident.id, TimelineEvent.kind == "vote"))).all()
        marked = {e.actor: e.data.get("late") for e in late}
        assert marked == {TL1: None, DO1: True}, "the vote after the deadline is marked late on the timeline"
        assert any("late" in e.text and e.actor == DO1 for e in late)
        assert "still counts" in ephemerals(h, DO1)[-1] or "decided" in ephemerals(h, DO1)[-1]

        h.clock.advance(5)
        after_decision = await h.bot.approvals.vote(request.id, TL2, "approve")
        assert after_decision.kind == "closed"
        after = await h.bot.approvals.get(request.id)
        assert (after.status, after.decided_at) == ("approved", decided.decided_at)
        assert (await kinds(h, incident.id))["vote_ignored"] == 1
        await h.advance(10 * 60)
        assert log.count("decision_overdue") == 1 and log.count("decided") == 1
        async with h.bot.db.session() as session:
            due = (await session.exec(select(Timer).where(Timer.kind == "decision_due"))).all()
        assert [t.status for t in due] == ["fired"]


async def test_decline_needs_a_reason_and_ends_the_vote(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        log = EventLog(h, "decided")
        incident = await declare(h, "immediate")
        await click(h, incident, "decision", DO1, DECLINE)
        [view] = h.state()["views"][DO1]
        empty = await h.sb.submit(DO1, view["id"], {"reason": ""})
        assert empty["body"]["response_action"] == "errors"
        await h.sb.submit(DO1, view["id"], {"reason": "errors dropped after the cache flush"})
        await h.settle()
        declined = await refreshed(h, incident.id)
        assert (declined.decision, declined.stage) == ("declined", "declined")
        assert declined.rollback_started_at is None
        assert log.of("decided") == [{"incident_id": incident.id, "decision": "declined"}]
        shown = await message(h, incident, "decision")
        assert action_ids(shown) == [] and "errors dropped after the cache flush" in str(shown["blocks"])
        request = await rollback_request(h, incident.id)
        assert (request.status, request.reason) == ("declined", "errors dropped after the cache flush")
        assert await step_status(h, incident.id, "rollback_decision") == "active", "no rollback: no Phase 2"


async def test_change_level_recomputes_policy_and_deadline_and_counts_earlier_votes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        log = EventLog(h, "decided")
        incident = await declare(h, "urgent")
        request = await rollback_request(h, incident.id)
        await click(h, incident, "decision", TL1, APPROVE)
        h.clock.advance(60)
        await click(h, incident, "decision", OUT, CHANGE_LEVEL, value="consideration")
        assert (await refreshed(h, incident.id)).level == "urgent"
        await click(h, incident, "decision", TL1, CHANGE_LEVEL, value="consideration")
        changed = await h.bot.approvals.get(request.id)
        assert changed.policy == {"all_of": ["technical_lead", "product_manager"]}
        assert changed.deadline_at == h.clock.now() + timedelta(minutes=10) and changed.status == "pending"
        assert (await refreshed(h, incident.id)).level == "consideration"
        await click(h, incident, "decision", DO1, APPROVE)
        assert "Product Manager" in ephemerals(h, DO1)[-1], "DevOps no longer approves at this level"
        # Down to immediate: TL1's vote alone now satisfies the policy, so the change decides it.
        await click(h, incident, "decision", TL1, CHANGE_LEVEL, value="immediate")
        assert (await h.bot.approvals.get(request.id)).status == "approved"
        assert log.count("decided") == 1
        counted = await kinds(h, incident.id)
        assert counted["level_changed"] == 2 and counted["level_change_refused"] == 1


async def test_a_user_removed_from_the_slack_group_loses_approval_power_within_the_cache_time(
        tmp_path: Path) -> None:
    async with harness(tmp_path, ROLLBOT_ROLE_CACHE_SECONDS="30") as h:
        incident = await declare(h, "urgent")
        request = await rollback_request(h, incident.id)
        assert await h.bot.svc.roles.roles_of(DO2, ["devops_lead"], incident.id) == ["devops_lead"]
        async with aiohttp.ClientSession() as session, session.post(
                f"{h.sb.base_url}/_sandbox/usergroups/S100DEVOPS", json={"users": [DO1]}) as response:
            assert response.status == 200
        # Within the cache time the old membership may still be served (the bound the setting promises) ...
        assert DO2 in await h.bot.svc.roles.members("devops_lead", incident.id)
        h.clock.advance(31)  # ... and no longer once it has passed: the coordinator's cache reads the injected clock
        await click(h, incident, "decision", DO2, APPROVE)
        refusal = ephemerals(h, DO2)[-1]
        assert refusal.startswith(":no_entry: Only the Technical Lead or DevOps Lead")
        assert f"<@{DO2}>" not in refusal and f"<@{DO1}>" in refusal
        assert await votes(h, request.id) == []
        assert (await kinds(h, incident.id))["approval_refused"] == 1
        async with h.bot.db.session() as session:
            assert (await session.get(ApprovalRequest, request.id)).status == "pending"  # type: ignore[union-attr]
