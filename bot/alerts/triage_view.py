"""The triage post for an alert that opened nothing: what it is, why it matched no trigger, and a Declare button."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.blocks import escape, truncate

DECLARE_ACTION = "triage_declare"
MAX_LABELS = 20


def triage_text(alert: dict[str, Any], outcome: str) -> str:
    what = "is below its trigger's threshold" if outcome == "refused" else "matched no trigger"
    return truncate(f"Alert {alert.get('name', 'alert')} from {alert.get('source', 'monitoring')} {what}", 300)


def triage_blocks(received_id: int, alert: dict[str, Any], outcome: str, reason: str) -> list[Block]:
    labels = alert.get("labels") if isinstance(alert.get("labels"), dict) else {}
    assert isinstance(labels, dict)
    severity = str(labels.get("severity", ""))
    icon = ":rotating_light:" if severity.lower() in ("critical", "page", "p1") else ":mag:"
    what = "is below its trigger's threshold" if outcome == "refused" else "opened nothing: it matched no trigger"
    head = (f"{icon} *{escape(str(alert.get('name', 'alert'))[:150])}* from {escape(str(alert.get('source', '')))} "
            f"{what}. Declare an incident if it needs one.")
    summary = str(alert.get("summary") or "")
    pairs = [f"`{escape(str(k)[:60])}={escape(str(v)[:120])}`" for k, v in sorted(labels.items())[:MAX_LABELS]]
    links = []
    for label, url in (("source", alert.get("url")), ("runbook", (alert.get("annotations") or {}).get("runbook_url"))):
        if isinstance(url, str) and url.startswith(("http://", "https://")) and not any(c in url for c in "<>|"):
            links.append(f"<{url}|{label}>")
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=truncate(head, 3000)))]
    if summary and summary != alert.get("name"):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(escape(summary), 3000))))
    if pairs:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate("Labels: " + " ".join(pairs), 3000))))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=truncate(" · ".join([*links, f"Why: {escape(reason)}"]), 3000))]))
    blocks.append(ActionsBlock(block_id="triage_actions", elements=[
        ButtonElement(text="Declare", action_id=DECLARE_ACTION, value=str(received_id), style="danger")]))
    return blocks
