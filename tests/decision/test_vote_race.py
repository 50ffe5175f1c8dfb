"""Votes racing on the engine directly, many requests at once (60 on PostgreSQL): each two-person request is decided exactly once,
by exactly one vote, and never left pending with both roles in (what a missing request lock loses on
PostgreSQL, where two transactions would each miss the other's vote)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.store.models import ApprovalRequest, TimelineEvent, Vote
from tests.decision.support import declare
from tests.support.harness import harness

APPROVERS = ("U100TL01", "U200DO01")  # exactly the two needed: the worst case, each must see the other


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_requests_with_two_racing_approvers_are_each_decided_once(tmp_path: Path, backend: str) -> None:
    async with harness(tmp_path, backend) as h:
        incident = await declare(h, "urgent")
        count = 60 if backend == "postgres" else 15  # SQLite serializes writers; PostgreSQL is where races bite
        ids = [f"apr-race-{i}" for i in range(count)]
        async with h.bot.db.session() as session:
            for request_id in ids:  # synthetic subjects: the engine's vote path, without a war room each
                session.add(ApprovalRequest(id=request_id, incident_id=incident.id, subject=f"race:{request_id}",
                                            policy={"all_of": ["technical_lead", "devops_lead"]},
                                            requested_by="U500OC01", requested_at=h.clock.now()))
        results = await asyncio.gather(*(h.bot.approvals.vote(r, u, "approve", follow_up=False)
                                         for r in ids for u in APPROVERS))
        decided = Counter(r.request_id for r in results if r.kind == "decided")
        assert decided == Counter(ids), "exactly one deciding vote per request"
        async with h.bot.db.session() as session:
            statuses = (await session.exec(select(ApprovalRequest.status).where(
                col(ApprovalRequest.id).in_(ids)))).all()
            cast = (await session.exec(select(Vote.request_id, Vote.user_id).where(
                col(Vote.request_id).in_(ids)))).all()
            approved = (await session.exec(select(TimelineEvent.id).where(
                TimelineEvent.kind == "action_approved"))).all()
        assert set(statuses) == {"approved"}
        assert len(cast) == len(set(cast)) == 2 * count
        assert len(approved) == count
