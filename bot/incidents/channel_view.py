"""What an incident channel shows above its messages: the topic (the phase, in plain words) and the bookmarks."""

from __future__ import annotations

from bot.core.snapshot import Snapshot
from bot.incidents.header import STAGE_LABELS
from bot.slack.blocks import escape

TOPIC_LIMIT = 250  # conversations.setTopic refuses longer topics (too_long)


def channel_topic(snap: Snapshot) -> str:
    """The level, the title, where the incident stands (the phase once rolling back) and the RTO."""
    inc, runbook = snap.incident, snap.runbook
    level = runbook.level(inc.level)
    phase = snap.procedure.phase(inc.phase_id) if inc.phase_id else None
    if inc.status != "open":
        where = "Resolved" if inc.status == "resolved" else "Closed"
    elif phase is not None and inc.stage not in ("deciding", "declined"):
        where = f"Phase {phase.number} of {len(snap.procedure.phases)}: {phase.title}"
    else:
        where = STAGE_LABELS.get(inc.stage, "Open")
    drill = "Drill · " if inc.is_drill else ""
    # Slack renders a topic's <!channel>, <@U…> and links: the title is untrusted text.
    text = f"{drill}{level.title} rollback · {where} · {escape(inc.title)}"
    rto = f" · RTO {runbook.objectives.rto_minutes:g} min"
    return (text[: TOPIC_LIMIT - len(rto) - 1] + "…" + rto) if len(text) + len(rto) > TOPIC_LIMIT else text + rto


def _url(value: object) -> str | None:
    if isinstance(value, str) and value.startswith(("http://", "https://")) and not any(c in value for c in "<>| "):
        return value
    return None


def channel_bookmarks(snap: Snapshot, alert_url: object = None, report_url: object = None) -> dict[str, tuple[str, str]]:
    """Bookmark key -> (title, link): the alert's source, the status page, and the report once it exists."""
    marks: dict[str, tuple[str, str]] = {}
    if (url := _url(alert_url)) is not None:
        marks["alert"] = ("Alert source", url)
    if (url := _url(snap.runbook.comms.status_page_url)) is not None:
        marks["status_page"] = ("Status page", url)
    if (url := _url(report_url)) is not None:
        marks["report"] = ("Post-incident report", url)
    return marks
