"""`/rollback status`: phase, steps done, overdue steps, elapsed time and time left to the RTO."""

from __future__ import annotations

from bot.engine.snapshot import Snapshot
from bot.views.common import duration


def status_text(snap: Snapshot) -> str:
    inc = snap.incident
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    done, total = snap.done_count()
    rto = snap.runbook.objectives.rto_minutes * 60
    left = rto - snap.elapsed_seconds
    overdue = snap.overdue_steps()
    lines = [
        f"*{inc.id}* — {inc.title}",
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
