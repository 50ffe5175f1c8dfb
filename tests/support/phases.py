"""Incidents moved straight to a phase of the procedure, for tests of what that phase does (the steps before it
are tested on their own)."""

from __future__ import annotations

from bot.runbook.procedure import procedure_for
from bot.store.models import Incident
from tests.support.harness import Harness


async def in_validation(h: Harness) -> Incident:
    """An incident whose rollback was approved (set directly: the vote is tested elsewhere) moved to Phase 4."""
    await h.command("U500OC01", "start payment --version v2.3.1")
    incident = await h.only_incident()
    async with h.bot.db.session() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None
        row.decision = "approved"
    procedure = procedure_for(h.bot.svc.runbook, incident.scenario_id)
    assert await h.bot.checklists.start_phase(incident.id, procedure.phase("validation_recovery"),
                                              from_phase=procedure.phase(incident.phase_id or ""))
    await h.settle()
    await h.bot.executions.idle()
    await h.settle()
    return await h.only_incident()
