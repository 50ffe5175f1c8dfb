"""`/rollback contacts`: who to call, by role, the management ladder and external support."""

from __future__ import annotations

from bot.runbook.model import Runbook
from bot.views.common import mentions


def contacts_text(runbook: Runbook, tiers: dict[str, tuple[list[str], list[str]]]) -> str:
    lines = ["*Immediate response team and roles*"]
    for role in runbook.roles:
        primary, secondary = tiers.get(role.id, ([], []))
        response = f" · responds within {role.response_minutes:g} min" if role.response_minutes else ""
        lines.append(f"• *{role.title}*: {mentions(primary)} (backup: {mentions(secondary) if secondary else '—'})"
                     f"{response}")
    lines.append("\n*Management escalation*")
    for rung in runbook.escalation.management:
        lines.append(f"• Level {rung.level}: {runbook.role(rung.role).title} within {rung.minutes:g} min")
    if runbook.escalation.external:
        lines.append("\n*External support*")
        for contact in runbook.escalation.external:
            lines.append(f"• *{contact.service}*: {contact.contact} · SLA {contact.sla} · {contact.escalation}")
    return "\n".join(lines)
