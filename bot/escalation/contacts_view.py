"""`/rollback contacts`: who to call, by role, the management ladder and external support."""

from __future__ import annotations

import re

from bot.runbook.model import Runbook
from bot.slack.blocks import escape

NOT_SET = "_not configured: add one to the roster_"
PLACEHOLDER = re.compile(r"^\s*\[[^\]]*\]\s*$")  # the seed's "[Emergency Contact]": a blank to fill in


def _people(users: list[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users)


def contacts_text(runbook: Runbook, tiers: dict[str, tuple[list[str], list[str]]]) -> str:
    """Primary and backup per role; a backup who is also a primary is not their own backup, and a role or an
    external contact nobody configured says so plainly."""
    lines = ["*Immediate response team and roles*"]
    for role in runbook.roles:
        primary, secondary = tiers.get(role.id, ([], []))
        primary = list(dict.fromkeys(primary))
        backups = [u for u in dict.fromkeys(secondary) if u not in primary]
        response = f" · responds within {role.response_minutes:g} min" if role.response_minutes else ""
        who = _people(primary) if primary else "no one: " + NOT_SET
        backup = _people(backups) if backups else ("none configured" if primary else "none")
        lines.append(f"• *{role.title}*: {who} (backup: {backup}){response}")
    lines.append("\n*Management escalation*")
    for rung in runbook.escalation.management:
        lines.append(f"• Level {rung.level}: {runbook.role(rung.role).title} within {rung.minutes:g} min")
    if runbook.escalation.external:
        lines.append("\n*External support*")
        for contact in runbook.escalation.external:
            how = ("_not configured: fill in this contact in the runbook_" if PLACEHOLDER.match(contact.contact)
                   or not contact.contact.strip() else escape(contact.contact))
            lines.append(f"• *{escape(contact.service)}*: {how} · SLA {escape(contact.sla)} · "
                         f"{escape(contact.escalation)}")
    return "\n".join(lines)
