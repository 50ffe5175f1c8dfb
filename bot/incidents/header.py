"""The pinned incident header: re-rendered from state whenever the incident changes."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.core.snapshot import Snapshot
from bot.slack.blocks import actor, clock_time, drill_prefix, escape, truncate, whole_minutes

STAGE_LABELS = {
    "deciding": "Awaiting rollback decision",
    "declined": "Rollback declined",
    "rolling_back": "Rolling back",
    "validating": "Validating",
    "stabilizing": "Stabilizing",
    "resolved": "Resolved",
}


def header_text(snap: Snapshot, mrkdwn: bool = True) -> str:
    inc = snap.incident
    title = escape(inc.title) if mrkdwn else inc.title  # the header block is plain text, the fallback mrkdwn
    level = snap.runbook.level(inc.level).title
    return f"{drill_prefix(inc.is_drill)}Rollback incident {inc.id}: {title} ({level})"


def header_blocks(snap: Snapshot) -> list[Block]:
    inc, runbook = snap.incident, snap.runbook
    level = runbook.level(inc.level)
    rto = runbook.objectives.rto_minutes
    # To the minute: the header is refreshed once a minute, and a render that changes nothing is not sent.
    elapsed = snap.elapsed_seconds // 60 * 60
    left = rto * 60 - elapsed
    deadline = snap.decision_deadline or inc.declared_at + timedelta(minutes=level.decision_minutes)
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    done, total = snap.done_count()
    decision = {
        None: f"due by {clock_time(deadline)} ({level.decision_minutes:g} min, needs {_policy(snap)})",
        "approved": f"approved at {clock_time(inc.decided_at)}" if inc.decided_at else "approved",
        "declined": "declined",
    }[inc.decision]
    trigger = runbook.trigger(inc.trigger_id).title if inc.trigger_id else "Declared by hand"
    fields = [
        MarkdownTextObject(text=f"*Level*\n{level.title}: {truncate(level.description, 120)}"),
        MarkdownTextObject(text=f"*Trigger*\n{truncate(trigger, 200)}"),
        MarkdownTextObject(text=f"*Declared by*\n{actor(inc.declared_by)} at {clock_time(inc.declared_at)}"),
        MarkdownTextObject(text=f"*Status*\n{STAGE_LABELS.get(inc.stage, inc.stage)}"),
        MarkdownTextObject(text=f"*Incident clock*\n{whole_minutes(elapsed)} elapsed · "
                                f"{'RTO passed' if left <= 0 else whole_minutes(left) + ' to RTO'}"),
        MarkdownTextObject(text=f"*Decision*\n{decision}"),
        MarkdownTextObject(text=f"*Objectives*\nRTO {rto:g} min · RPO {runbook.objectives.rpo_minutes:g} min"),
        MarkdownTextObject(text=f"*Phase*\n{_phase(phase)} · steps {done}/{total}"),
    ]
    if snap.procedure.scenario:
        fields.append(MarkdownTextObject(text=f"*Scenario*\n{snap.procedure.scenario.title}"))
    if inc.version:
        fields.append(MarkdownTextObject(text=f"*Roll back to*\n`{escape(inc.version)}`"))
    blocks: list[Block] = [
        HeaderBlock(text=truncate(f"{'🧪 ' if inc.is_drill else '🚨 '}{header_text(snap, mrkdwn=False)}", 150)),
        SectionBlock(block_id="header_who_what_when", text=MarkdownTextObject(text=truncate(who_what_when(snap), 3000))),
        SectionBlock(fields=fields),
    ]
    overdue = snap.overdue_steps()
    if overdue:
        late = ", ".join(f"Step {s.number} ({_late(snap.now - snap.due_at(s))} late)"
                         for s in overdue)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f":warning: *Overdue:* {late}", 3000))))
    if inc.evidence or inc.description:
        evidence = "\n".join(escape(x) for x in (inc.description, inc.evidence) if x)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=truncate(evidence, 2000))]))
    if snap.firing_alerts or snap.resolved_alerts:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(_alerts_text(snap), 3000))))
    blocks.append(DividerBlock())
    buttons = [ButtonElement(text="Status", action_id="incident_status", value=inc.id)]
    if inc.status == "open" and any(a.get("source") == "alertmanager" for a in snap.firing_alerts):
        buttons.append(ButtonElement(text="Silence for 1 h", action_id=SILENCE_ACTION, value=inc.id))
    blocks.append(ActionsBlock(block_id="header_actions", elements=buttons))
    return blocks


SILENCE_ACTION = "alerts_silence"
MAX_ALERT_LINES = 8


def _link(url: object, label: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or any(c in url for c in "<>|"):
        return ""
    return f" · <{url}|{label}>"


def _alerts_text(snap: Snapshot) -> str:
    """Each alert of the incident by fingerprint: the firing ones first, then those resolved (struck through)."""
    firing, resolved = snap.firing_alerts, snap.resolved_alerts
    total = len(firing) + len(resolved)
    if firing:
        head = f":rotating_light: *Firing alerts ({len(firing)}{f' of {total}' if resolved else ''})*"
    else:
        head = f":white_check_mark: *All {total} alert{'s' if total != 1 else ''} resolved*"
    lines = [_alert_line(a) for a in firing[:MAX_ALERT_LINES]]
    room = max(0, MAX_ALERT_LINES - len(lines))
    lines += [_resolved_line(a) for a in resolved[:room]]
    more = total - len(lines)
    if more > 0:
        lines.append(f"…and {more} more")
    return head + "\n" + "\n".join(lines)


def _resolved_line(alert: dict[str, object]) -> str:
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    service = labels.get("service") or labels.get("job") or labels.get("instance")
    parts = [f"~{escape(str(alert.get('name', 'alert'))[:100])}~"]
    if service:
        parts.append(escape(str(service)[:60]))
    at = alert.get("resolved_at")
    if isinstance(at, str):
        with contextlib.suppress(ValueError):
            parts.append(f"resolved at {clock_time(datetime.fromisoformat(at))}")
    return "• " + " · ".join(parts)


def _alert_line(alert: dict[str, object]) -> str:
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    annotations = alert.get("annotations") if isinstance(alert.get("annotations"), dict) else {}
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    service = labels.get("service") or labels.get("job") or labels.get("instance")
    parts = [f"*{escape(str(alert.get('name', 'alert'))[:100])}*"]
    if service:
        parts.append(escape(str(service)[:60]))
    value = alert.get("value")
    if isinstance(value, int | float):
        unit = labels.get("unit") or annotations.get("unit") or ""
        parts.append(f"value {value:g}{(' ' + escape(str(unit)[:20])) if unit else ''}")
    since = alert.get("starts_at")
    if isinstance(since, str):
        with contextlib.suppress(ValueError):
            parts.append(f"since {clock_time(datetime.fromisoformat(since))}")
    return "• " + " · ".join(parts) + _link(alert.get("url"), "source") + _link(annotations.get("runbook_url"), "runbook")
def slack_time(when: datetime) -> str:
    """A time each reader sees in their own time zone (Slack's date formatting), UTC for old clients."""
    return f"<!date^{int(when.timestamp())}^{{time}}|{clock_time(when)}>"


def who_what_when(snap: Snapshot) -> str:
    """Who leads, who approved and when, what is being worked on and by whom, what is due next and by when,
    and the clock against the RTO: the questions a responder joining the channel asks first."""
    inc, runbook = snap.incident, snap.runbook
    leads = [(r, u) for r in runbook.incident_lead_roles for u in snap.holders.get(r, [])[:1]]
    lead = ", ".join(f"<@{u}> ({runbook.role(r).title})" for r, u in leads) or "_not on the roster_"
    lines = [f"*Incident lead:* {lead}"]
    if inc.decision == "approved":
        who = ", ".join(f"<@{u}> at {clock_time(at)}" for u, at in snap.approvals) or \
            (f"at {clock_time(inc.decided_at)}" if inc.decided_at else "")
        lines.append(f"*Rollback approved* by {who}")
    elif inc.decision == "declined":
        lines.append("*Rollback declined*")
    step = snap.current_step()
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    if phase is not None and step is not None:
        owners = snap.holders.get(step.owner, [])
        owner = f"{runbook.role(step.owner).title}" + (f" <@{owners[0]}>" if owners else "")
        lines.append(f"*Now:* Phase {phase.number}: {phase.title} — Step {step.number}: {step.title} · owner {owner}")
    rto_at = inc.declared_at + timedelta(minutes=runbook.objectives.rto_minutes)
    if inc.decision is None:
        deadline = snap.decision_deadline or inc.declared_at + timedelta(minutes=runbook.level(inc.level).decision_minutes)
        late = snap.now > deadline
        nxt = f"the rollback decision, {'overdue since' if late else 'by'} {slack_time(deadline)}"
    elif step is not None:
        nxt = f"Step {step.number} by {slack_time(snap.due_at(step))}" + \
            (" (overdue)" if snap.now > snap.due_at(step) else "")
    else:
        nxt = f"recovery by {slack_time(rto_at)}"
    elapsed = snap.elapsed_seconds
    rto = runbook.objectives.rto_minutes
    clock = f"{whole_minutes(elapsed)} of the {rto:g}-min RTO" + (" — RTO passed" if snap.now > rto_at else
                                                             f" (RTO at {slack_time(rto_at)})")
    lines.append(f"*Next due:* {nxt} · *Clock:* {clock}")
    return "\n".join(lines)


def _late(by: timedelta) -> str:
    return whole_minutes(by.total_seconds()) if by >= timedelta(minutes=1) else "<1 min"


def _policy(snap: Snapshot) -> str:
    policy = snap.runbook.level(snap.incident.level).approval
    titles = [snap.runbook.role(r).title for r in policy.roles]
    return " OR ".join(titles) if policy.any_of else " + ".join(titles)


def _phase(phase: object) -> str:
    return f"{phase.number}. {phase.title}" if phase is not None else "—"  # type: ignore[attr-defined]
