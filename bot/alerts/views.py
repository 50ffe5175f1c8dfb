"""The incident's alerts in words: the timeline line of a change, and the thread post when every alert resolved."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, MarkdownTextObject, SectionBlock

from bot.slack.blocks import clock_time, escape, truncate

VALIDATE_ACTION = "alerts_resolved_validate"
RESOLVE_ACTION = "alerts_resolved_resolve"
MAX_LABELS = 8


def labels_text(labels: object) -> str:
    """The alert's labels in plain words, escaped: "service payments, severity critical"."""
    if not isinstance(labels, dict):
        return ""
    shown = [(k, v) for k, v in labels.items() if k not in ("alertname", "__name__")][:MAX_LABELS]
    return ", ".join(f"{escape(str(k)[:40])} {escape(str(v)[:80])}" for k, v in shown)


def change_line(change: str, alert: dict[str, object]) -> str:
    """One timeline line for a new alert in the group, or a firing/resolved change."""
    name = escape(str(alert.get("name") or "alert")[:150])
    source = escape(str(alert.get("source") or "monitoring"))
    what = {"new": f"New alert in the group from {source}: {name} is firing",
            "fired": f"{name} is firing again ({source})",
            "resolved": f"{name} resolved ({source})"}[change]
    labels = labels_text(alert.get("labels"))
    return truncate(what + (f" — {labels}" if labels else ""), 500)


def all_resolved_text(names: list[str], at: datetime) -> str:
    return truncate(f"Every alert of this incident has resolved ({', '.join(names)}; the last at {clock_time(at)}).", 300)


def all_resolved_blocks(received_id: int, names: list[str], at: datetime, lead_roles: str) -> list[Block]:
    """The thread post: said once per all-resolved episode, with the incident lead's two ways forward."""
    shown = ", ".join(f"*{escape(n[:100])}*" for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    text = (f":white_check_mark: Every alert of this incident has resolved ({shown}; the last at {clock_time(at)}).\n"
            f"The incident stays open until the incident lead ({lead_roles}) moves it on: to validation, or resolved.")
    return [
        SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000))),
        ActionsBlock(block_id="alerts_resolved_actions", elements=[
            ButtonElement(text="Move to validation", action_id=VALIDATE_ACTION, value=str(received_id),
                          style="primary"),
            ButtonElement(text="Resolve", action_id=RESOLVE_ACTION, value=str(received_id)),
        ]),
    ]
