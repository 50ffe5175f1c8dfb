"""Action output under a flood: the reader splits chunks into lines like a line-by-line reader would, lets the
rest of the bot run between chunks, and still delivers every line redacted and in order, capped in the result."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter

from actions.redact import MASK
from actions.result import Outcome
from actions.shell import MAX_LINE_BYTES, READ_CHUNK_BYTES, ShellSpec, run_shell, split_lines

LINES = 40_000
# Each line carries two secrets; the script writes everything in one go, as fast as the pipe takes it.
FLOOD = (
    "import sys\n"
    f"sys.stdout.write(''.join(f'{{i:06d}} token=xoxb-1234-5678 password=hunter2hunter2\\n' for i in range({LINES})))\n"
)


def expected(i: int) -> str:
    return f"{i:06d} token={MASK} password={MASK}"


async def test_a_flooding_action_lets_other_tasks_run_between_chunks_and_keeps_every_line() -> None:
    ticks = 0
    stop = asyncio.Event()

    async def other_work() -> None:  # stands for the bot's acks and timers
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    seen: list[tuple[int, str]] = []

    async def on_line(line: str) -> None:
        seen.append((ticks, line))

    ticker = asyncio.create_task(other_work())
    try:
        result = await run_shell(ShellSpec((sys.executable, "-c", FLOOD), max_output_bytes=8192), on_line=on_line)
    finally:
        stop.set()
        await ticker
    assert result.outcome is Outcome.SUCCEEDED
    # Complete, redacted and in order on the way to Slack.
    assert [line for _, line in seen] == [expected(i) for i in range(LINES)]
    # Between two turns of the other task the reader handled at most one chunk's worth of lines.
    line_bytes = len(f"{0:06d} token=xoxb-1234-5678 password=hunter2hunter2\n")
    lines_per_turn = Counter(tick for tick, _ in seen)
    assert max(lines_per_turn.values()) <= READ_CHUNK_BYTES // line_bytes + 1
    assert len(lines_per_turn) > LINES * line_bytes // READ_CHUNK_BYTES // 2  # it really took turns
    # The stored output is capped, keeps the beginning and the end, and holds no secret.
    assert result.truncated
    assert result.output.startswith(expected(0) + "\n")
    assert result.output.endswith(expected(LINES - 1))
    assert "xoxb" not in result.output and "hunter2" not in result.output


def test_a_chunk_splits_into_its_complete_lines_and_keeps_the_unfinished_one() -> None:
    assert split_lines(b"a\nb\r\n\nc") == ([b"a", b"b\r", b""], b"c")
    assert split_lines(b"no newline yet") == ([], b"no newline yet")
    assert split_lines(b"ends\n") == ([b"ends"], b"")


def test_lines_longer_than_the_limit_are_cut_into_pieces_in_order() -> None:
    long = b"x" * (2 * MAX_LINE_BYTES + 10)
    lines, rest = split_lines(b"short\n" + long + b"\nafter\n" + b"y" * (MAX_LINE_BYTES + 3))
    assert lines == [b"short", b"x" * MAX_LINE_BYTES, b"x" * MAX_LINE_BYTES, b"x" * 10, b"after",
                     b"y" * MAX_LINE_BYTES]
    assert rest == b"yyy"
    exact = b"z" * MAX_LINE_BYTES
    assert split_lines(exact + b"\n" + exact + b"\n") == ([exact, exact], b"")
