"""The visible failure of parked work: what failed, when, the error, and a Retry button (pure: state in, blocks out)."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement, ContextBlock, MarkdownTextObject, SectionBlock

from bot.slack.blocks import clock_time, escape, truncate

RETRY_ACTION = "outbox_retry"


def parked_text(what: str, failed_at: datetime, attempts: int, error: str) -> str:
    return f"{what} failed {attempts} times and stopped at {clock_time(failed_at)}: {error}"


def parked_blocks(what: str, failed_at: datetime, attempts: int, error: str, row_id: int,
                  retried_by: str | None = None, retried_at: datetime | None = None) -> list[Block]:
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=(
        f":warning: *{escape(what)} failed* — {attempts} attempts, the last at {clock_time(failed_at)}.\n"
        f"Error: `{escape(truncate(error, 400))}`")))]
    if retried_by is not None and retried_at is not None:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"Retried by <@{retried_by}> at {clock_time(retried_at)}.")]))
    else:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text="Nothing more happens until someone retries it.")]))
        blocks.append(ActionsBlock(elements=[ButtonElement(text="Retry", action_id=RETRY_ACTION, value=str(row_id),
                                                           style="primary")]))
    return blocks
