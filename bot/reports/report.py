"""The post-incident report, from the incident's history (bot/reports/history.py): in Markdown to paste, or as JSON.

Written for people outside the war room: names and roles instead of Slack IDs, runbook titles instead of internal
ids, wall-clock times in the runbook's time zone with UTC, a curated timeline (checkbox ticks folded into their
step), the timings against the runbook's targets and the seed's success metrics, the communications as sent, and
the follow-ups with their owner and due date."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.core.people import People
from bot.core.wallclock import date_time_of, time_of
from bot.reports import history
from bot.reports.history import History, Timing
from bot.runbook.model import Runbook
from bot.slack.blocks import duration
from bot.store.db import Database

AUDIENCE = {"customers": "customers", "status_page": "the status page", "internal": "the internal team",
            "support": "the support team", "executives": "executives"}


def _at(at: datetime | None, zone: str) -> str:
    return time_of(at, zone, seconds=True) if at else "—"


def _minutes(value: float | None) -> str:
    return f"{value:g} min" if value is not None else "—"


def _met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "no")


def _action_title(runbook: Runbook, action_id: str) -> str:
    try:
        return runbook.action(action_id).title
    except KeyError:
        return "an action no longer in the runbook"


def _step_title(h: History, step_id: str) -> str:
    try:
        step = h.procedure.step(step_id)
    except KeyError:
        return "a step no longer in the runbook"
    return f"Step {step.number:g}: {step.title}"


def follow_ups(h: History, people: People, holders: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The runbook's follow-ups, each with its owner (the role's first holder) and due date after resolution."""
    zone = h.runbook.comms.timezone
    out = []
    for follow in h.runbook.follow_ups:
        owner = next(iter(holders.get(follow.owner, [])), None)
        role = h.runbook.role(follow.owner).title
        due = h.resolved_at + timedelta(minutes=follow.within_minutes) if h.resolved_at else None
        out.append({"title": follow.title, "owner_role": role,
                    "owner": people.known(owner) if owner else f"whoever holds the {role} role",
                    "due": date_time_of(due, zone) if due else f"{duration(follow.within_minutes * 60)} after resolution",
                    "groups": [{"title": g.title, "items": list(g.items)} for g in follow.groups]})
    return out


def _timing_row(t: Timing) -> str:
    return f"| {t.label} | {t.span} | {_minutes(t.minutes)} | {t.target or '—'} | {_met(t.met)} |"


def _inert(text: str) -> str:
    """Untrusted text in Markdown: `<` escaped, so `<!channel>`, `<@U…>` and `<http://x|y>` stay the characters they
    are (Markdown would take `<!…>` for raw HTML and hide it, `<http://…>` for a link)."""
    return text.replace("<", "\\<")


def render_markdown(h: History, people: People, holders: dict[str, list[str]]) -> str:
    rb, inc = h.runbook, h.incident
    zone = rb.comms.timezone
    lines = [f"# Post-incident report: {_inert(h.title)}", ""]
    if inc.is_drill:
        lines += ["**This was a drill.** Nothing was changed in production and nothing was sent to customers.", ""]
    resolved = (f"resolved at {date_time_of(h.resolved_at, zone)} by {people.with_role(inc.resolved_by)}"
                if h.resolved_at else "still open")
    lines += [f"Incident {inc.id}, {rb.level(inc.level).title} level. Declared at {date_time_of(h.declared_at, zone)} "
              f"by {people.with_role(inc.declared_by)}; {resolved}.",
              f"Times are in {zone}, with UTC in brackets.", "", "## Summary", ""]
    ended = h.impact_ended_at
    impact_minutes = round(((ended or h.declared_at) - h.problem_started_at).total_seconds() / 60, 1)
    lines += [
        f"- What customers saw: {h.impact_past or h.impact or 'not stated in the runbook for this trigger'}",
        f"- Customer impact: from {_at(h.problem_started_at, zone)} to {_at(ended, zone)}"
        + (f" (about {impact_minutes:g} min)" if ended else " (not restored yet)"),
        f"- Trigger: {rb.trigger(inc.trigger_id).title if inc.trigger_id else 'declared by hand'}"
        + (f" — {inc.evidence}" if inc.evidence else ""),
        f"- Scenario: {rb.scenario(inc.scenario_id).title if inc.scenario_id else 'the generic procedure'}",
        f"- Decision: {_decision(h, people)}",
        f"- Data: {_data_line(h)}",
        "", "## Timings against targets", "",
        "| measure | from – to | took | target | met |", "|---|---|---|---|---|",
        *[_timing_row(t) for t in h.timings],
        "", "## Success metrics", "", "| metric | target | result | met |", "|---|---|---|---|",
        *[f"| {s.label} | {s.target} | {s.value} | {_met(s.met)} |" for s in h.success],
        "", "## Steps against the plan", "", "| step | planned by | done at | result |", "|---|---|---|---|",
    ]
    for s in h.plan.steps:
        done = f"{s.done_at_min:g} min" if s.done_at_min is not None else "—"
        result = {"on_time": "on time", "late": f"{s.late_min:g} min late", "skipped": "skipped",
                  "not_done": "not done"}[s.status]
        lines.append(f"| Step {s.number:g}: {s.title} | {s.window_end_min:g} min | {done} | {result} |")
    lines += ["", "## People", ""]
    lines += [f"- {people.known(u)}: {', '.join(people.roles.get(u, [])) or 'no runbook role'}"
              for u in sorted(h.people(), key=people.known)] or ["- nobody recorded"]
    lines += ["", "## Decisions and approvals", ""]
    for request, votes in h.approvals:
        lines.append(f"- {_subject(h, request.subject)}: {request.status}"
                     + (f" at {_at(request.decided_at, zone)}" if request.decided_at else ""))
        lines += [f"  - {v.vote} by {people.known(v.user_id)} ({', '.join(_role_titles(rb, v.roles)) or 'no role'}) "
                  f"at {_at(v.at, zone)}" + (f": {people.text(v.reason)}" if v.reason else "") for v in votes]
    if not h.approvals:
        lines.append("- none")
    lines += ["", "## Actions", "", "| action | step | result | started | finished | took | requested by |",
              "|---|---|---|---|---|---|---|"]
    for e in h.executions:
        took = duration(e.duration_s) if e.duration_s is not None else "—"
        state = e.state.replace("_", " ") + (" (dry run)" if e.dry_run else "")
        lines.append(f"| {_action_title(rb, e.action_id)} | {_step_title(h, e.step_id)} | {state} | "
                     f"{_at(e.started_at, zone)} | {_at(e.finished_at, zone)} | {took} | {people.known(e.requested_by)} |")
    if not h.executions:
        lines.append("| none | | | | | | |")
    lines += ["", "## Communications", ""]
    for c in h.comms:
        template = next((t for t in rb.communications if t.id == c.template_id), None)
        title = template.title if template else "A communication"
        audience = AUDIENCE[template.audience] if template else "someone"
        if c.status == "sent":
            state = f"sent at {_at(c.sent_at, zone)} by {people.known(c.sent_by)}"
        elif c.status == "approved":
            state = f"approved at {_at(c.approved_at, zone)} by {people.known(c.approved_by)}, not marked as sent"
        else:
            state = "drafted, never approved or sent"
        lines += [f"### {title} (for {audience}): {state}", ""]
        lines += [">" + (" " + _inert(line) if line else "") for line in c.text.splitlines()] + [""]
    if not h.comms:
        lines += ["- none", ""]
    lines += ["## Timeline", ""]
    lines += [f"- {_at(e.at, zone)} {_inert(people.text(html.unescape(e.text)))}"
              + (f" ({people.known(e.actor)})" if e.actor and f"<@{e.actor}>" not in e.text else "")
              for e in h.key_events]
    lines += ["", "## Follow-ups", ""]
    for follow in follow_ups(h, people, holders):
        lines += [f"### {follow['title']}", "", f"Owner: {follow['owner']} ({follow['owner_role']}). "
                  f"Due: {follow['due']}.", ""]
        for group in follow["groups"]:
            lines.append(f"- **{group['title']}**")
            lines += [f"  - [ ] {item}" for item in group["items"]]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_json(h: History, people: People, holders: dict[str, list[str]]) -> dict[str, Any]:
    rb, inc = h.runbook, h.incident
    zone = rb.comms.timezone

    def iso(at: datetime | None) -> str | None:
        return at.isoformat() if at else None

    return {
        "incident": {"id": inc.id, "title": h.title, "level": rb.level(inc.level).title, "drill": inc.is_drill,
                     "status": inc.status, "timezone": zone, "impact": h.impact_past or h.impact,
                     "problem_started_at": iso(h.problem_started_at), "declared_at": iso(h.declared_at),
                     "first_acknowledged_at": iso(h.first_ack_at), "decided_at": iso(h.decided_at),
                     "service_restored_at": iso(h.restored_at), "resolved_at": iso(h.resolved_at),
                     "resolved_by": people.with_role(inc.resolved_by) if inc.resolved_by else None},
        "timings": [{"label": t.label, "span": t.span, "minutes": t.minutes, "target_minutes": t.target_minutes,
                     "met": t.met} for t in h.timings],
        "success_metrics": [{"label": s.label, "target": s.target, "result": s.value, "met": s.met}
                            for s in h.success],
        "data": {"snapshot_at": iso(h.data.snapshot_at), "restored_at": iso(h.data.restored_at),
                 "restore_point": h.data.restore_point, "preserved": h.data.preserved},
        "steps": [{"step": f"Step {s.number:g}: {s.title}", "planned_by_min": s.window_end_min,
                   "done_at_min": s.done_at_min, "status": s.status} for s in h.plan.steps],
        "communications": [{"title": next((t.title for t in rb.communications if t.id == c.template_id), ""),
                            "status": c.status, "sent_at": iso(c.sent_at),
                            "sent_by": people.known(c.sent_by) if c.sent_by else None, "text": c.text}
                           for c in h.comms],
        "timeline": [{"at": e.at.isoformat(), "local": time_of(e.at, zone, seconds=True), "kind": e.kind,
                      "text": people.text(html.unescape(e.text))} for e in h.key_events],
        "follow_ups": follow_ups(h, people, holders),
    }


def _role_titles(runbook: Runbook, roles: list[str]) -> list[str]:
    titles = []
    for role in roles:
        try:
            titles.append(runbook.role(role).title)
        except KeyError:
            continue
    return titles


def _subject(h: History, subject: str) -> str:
    if subject == "rollback":
        return "Rollback"
    execution = next((e for e in h.executions if f"execution:{e.id}" == subject), None)
    return f"Action: {_action_title(h.runbook, execution.action_id)}" if execution else "An action"


def _decision(h: History, people: People) -> str:
    inc = h.incident
    if not inc.decision:
        return "none recorded"
    zone = h.runbook.comms.timezone
    deciders = [v.user_id for r, votes in h.approvals if r.subject == "rollback" for v in votes
                if v.vote == ("approve" if inc.decision == "approved" else "decline")]
    who = ", ".join(people.with_role(u) for u in dict.fromkeys(deciders))
    return f"rollback {inc.decision} at {_at(inc.decided_at, zone)}" + (f" by {who}" if who else "")


def _data_line(h: History) -> str:
    zone = h.runbook.comms.timezone
    d = h.data
    if d.restored:
        return (f"the database was restored from {d.restore_point or 'a backup'} at {_at(d.restored_at, zone)}: "
                "changes made after the restore point were lost")
    if d.snapshot_at:
        return f"snapshot taken at {_at(d.snapshot_at, zone)}; no database restore"
    return "no snapshot succeeded" + (" (the snapshot failed)" if d.snapshot_failed else "") + "; no database restore"


async def write_report(db: Database, runbook: Runbook, incident_id: str, now: datetime, people: People,
                       holders: dict[str, list[str]], fmt: Literal["md", "json"] = "md") -> str:
    """The report as it stands now. `holders` maps role ids to the users holding them (the roster, the
    incident's overrides); the roles people acted in (votes, pages) are added from the history itself."""
    h = await history.load(db, runbook, incident_id, now)
    for role_id, users in holders.items():
        for user in users:
            people.add_role(user, runbook.role(role_id).title)
    for user, roles in [(p.user_id, [p.role]) for p in h.pages] + [
            (v.user_id, v.roles) for _, votes in h.approvals for v in votes]:
        for title in _role_titles(runbook, roles):
            people.add_role(user, title)
    owners = [u for f in runbook.follow_ups for u in holders.get(f.owner, [])[:1]]
    await people.resolve(h.people() | set(owners))
    if fmt == "json":
        return json.dumps(render_json(h, people, holders), indent=2, ensure_ascii=False) + "\n"
    return render_markdown(h, people, holders)
