"""Capped output capture: keeps the beginning and the end of a long output and says what was dropped.

The head shows what the action set out to do, the tail how it ended (usually the error), so both survive.
"""

from __future__ import annotations

from collections import deque

DEFAULT_MAX_OUTPUT_BYTES = 64 * 1024


class OutputBuffer:
    def __init__(self, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> None:
        if max_bytes < 64:
            raise ValueError("max_bytes must be at least 64")
        self.max_bytes = max_bytes
        self._head: list[str] = []
        self._head_bytes = 0
        self._head_open = True
        self._tail: deque[str] = deque()
        self._tail_bytes = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.total_lines = 0
        self.total_bytes = 0

    @property
    def truncated(self) -> bool:
        return self.dropped_bytes > 0

    def add(self, line: str) -> None:
        size = len(line.encode("utf-8")) + 1  # the newline counts
        self.total_lines += 1
        self.total_bytes += size
        if self._head_open and self._head_bytes + size <= self.max_bytes // 2:
            self._head.append(line)
            self._head_bytes += size
            return
        self._head_open = False  # once a line went to the tail, the head is fixed
        room = self.max_bytes - self._head_bytes
        if size > room:
            # A single line larger than the whole tail: keep its end, which is where errors tend to be.
            keep = line.encode("utf-8")[-(room - 1) :].decode("utf-8", errors="ignore")
            self.dropped_bytes += size - (len(keep.encode("utf-8")) + 1)
            line, size = keep, len(keep.encode("utf-8")) + 1
        self._tail.append(line)
        self._tail_bytes += size
        while self._tail_bytes > room:
            gone = self._tail.popleft()
            gone_size = len(gone.encode("utf-8")) + 1
            self._tail_bytes -= gone_size
            self.dropped_lines += 1
            self.dropped_bytes += gone_size

    def text(self) -> str:
        parts = list(self._head)
        if self.truncated:
            parts.append(f"[... output truncated: {self.dropped_bytes} bytes ({self.dropped_lines} lines) dropped ...]")
        parts.extend(self._tail)
        return "\n".join(parts)
