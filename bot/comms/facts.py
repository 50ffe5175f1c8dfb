"""The facts a communication template may state, from the incident's history: pure, so every template can be
checked against every kind of incident without Slack or a database (tests/comms/test_templates.py).

Each value is a fact the store recorded, or None/False when it did not: templates make a claim only under the
fact that backs it (`data.preserved` only when a snapshot succeeded and nothing was restored)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.core.people import People
from bot.core.wallclock import date_time_of, time_of
from bot.reports.history import History
from bot.runbook.model import CommsTemplate

# What stakeholders are told changed since their last update (the rest of the timeline is for the report).
CHANGE_KINDS = frozenset({"decided", "level_changed", "escalated", "decision_overdue", "execution_finished",
                          "traffic_stage", "phase_started", "validated", "resolved"})


def changes_since(h: History, template: CommsTemplate | None, now: datetime,
                  people: People) -> tuple[datetime | None, list[str]]:
    """Key events since this audience's previous update (or since the start), in the audience's clock time."""
    zone = h.runbook.comms.timezone
    audiences = {t.id: t.audience for t in h.runbook.communications}
    earlier = [c for c in h.comms if template and c.template_id != template.id
               and audiences.get(c.template_id) == template.audience and c.drafted_at <= now]
    since = max((c.drafted_at for c in earlier), default=None)
    picked = [e for e in h.key_events if e.kind in CHANGE_KINDS and (since is None or e.at > since) and e.at <= now]
    return since, [f"{time_of(e.at, zone)}: {people.text(e.text)}" for e in picked]


def facts(h: History, now: datetime, people: People, lead: str | None,
          template: CommsTemplate | None = None) -> dict[str, Any]:
    """The template context (its shape is `bot.runbook.templating.sample_context`); `people` already resolved."""
    inc, runbook = h.incident, h.runbook
    zone = runbook.comms.timezone
    approvers = [v.user_id for r, votes in h.approvals if r.subject == "rollback" for v in votes
                 if v.vote == "approve"]
    phase = h.procedure.phase(inc.phase_id) if inc.phase_id else None
    completed = inc.rollback_completed_at
    ended = h.impact_ended_at
    service = runbook.comms.service or (runbook.title.split(" ")[0] if runbook.title else runbook.name)
    since, changes = changes_since(h, template, now, people)
    impact_past = h.impact_past or (f"customers were affected ({h.impact})" if h.impact
                                    else f"some {service} features did not work as they should")
    return {
        "service": {"name": service},
        "incident": {
            "id": inc.id, "title": h.title, "level": inc.level, "level_title": runbook.level(inc.level).title,
            "scenario": h.procedure.scenario.title if h.procedure.scenario else None,
            "trigger": runbook.trigger(inc.trigger_id).title if inc.trigger_id else None,
            "impact": h.impact or f"some {service} features are not working as they should",
            "impact_past": impact_past,
            "phase": phase.title if phase else "", "started_at": date_time_of(h.problem_started_at, zone),
            "declared_at": time_of(inc.declared_at, zone),
            "elapsed_minutes": round(((inc.resolved_at or now) - inc.declared_at).total_seconds() / 60),
            "channel_name": inc.channel_name or "",
            "lead": lead or "the incident lead", "is_drill": inc.is_drill,
            "resolved_at": time_of(inc.resolved_at, zone) if inc.resolved_at else None,
        },
        "impact": {
            "started_at": time_of(h.problem_started_at, zone),
            "ended_at": time_of(ended, zone) if ended else None,
            "minutes": max(1, round(((ended or now) - h.problem_started_at).total_seconds() / 60)),
            "ongoing": ended is None,
        },
        "objectives": {"rto_minutes": round(runbook.objectives.rto_minutes)},
        "decision": {"approvers": [people.known(u) for u in dict.fromkeys(approvers)],
                     "decided_at": time_of(inc.decided_at, zone) if inc.decided_at else None,
                     "approved": inc.decision == "approved"},
        "rollback": {
            "version": inc.version,
            "completed_at": time_of(completed, zone) if completed else None,
            "duration_minutes": round((completed - inc.decided_at).total_seconds() / 60)
            if completed and inc.decided_at else None,
        },
        "data": {
            "snapshot_taken": h.data.snapshot_at is not None,
            "snapshot_at": time_of(h.data.snapshot_at, zone) if h.data.snapshot_at else None,
            "snapshot_failed": h.data.snapshot_failed,
            "restored": h.data.restored,
            "restored_at": time_of(h.data.restored_at, zone) if h.data.restored_at else None,
            "restore_point": h.data.restore_point,
            "preserved": h.data.preserved,
        },
        "update": {
            "next_minutes": round(template.next_update_minutes) if template and template.next_update_minutes
            else None,
            "since": time_of(since, zone) if since else None,
            "changes": changes,
        },
    }
