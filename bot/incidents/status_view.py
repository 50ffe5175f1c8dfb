"""`/rollback status`: phase, steps done, overdue steps, elapsed time and time left to the RTO."""

from __future__ import annotations

from bot.core.snapshot import Snapshot
from bot.slack.blocks import duration, escape


def status_text(snap: Snapshot) -> str:
    inc = snap.incident
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    done, total = snap.done_count()
    rto = snap.runbook.objectives.rto_minutes * 60
    left = rto - snap.elapsed_seconds
    overdue = snap.overdue_steps()
    lines = [
        f"*{inc.id}* — {escape(inc.title)}",
        f"Phase: {f'{phase.number}. {phase.title}' if phase else '—'} · steps done {done}/{total}",
        f"Elapsed {duration(snap.elapsed_seconds)} · "
        + (f"{duration(left)} left to the {rto / 60:g}-minute RTO" if left >= 0 else f"RTO passed by {duration(-left)}"),
    ]
    if overdue:
        lines.append("Overdue: " + ", ".join(
            f"Step {s.number} {s.title} ({duration((snap.now - snap.due_at(s)).total_seconds())} late)" for s in overdue))
    else:
        lines.append("No step is overdue.")
    return "\n".join(lines)


def incident_menu_text(snap: Snapshot) -> str:
    """`/rollback` alone in an incident channel: where the incident stands and what can be done from here."""
    return status_text(snap) + (
        "\n\n*In this incident:*\n"
        "• `/rollback status` — where it stands\n"
        "• `/rollback note <text>` — add a note to the timeline\n"
        "• `/rollback timeline` — the timeline, only to you (`/rollback timeline post` shows it to the channel)\n"
        "• `/rollback contacts` — who holds each role, and who to page\n"
        "• `/rollback role <role> @person` — give someone a role for this incident\n"
        "• `/rollback resolve` — close the incident when it is over")
