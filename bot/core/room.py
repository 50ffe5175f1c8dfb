"""The war room as the concepts see it: the incident's messages, re-rendered from the store.

A Protocol, implemented by `bot.incidents.warroom.WarRoom` and handed to each concept by the composition root,
so a step, a decision or a run can re-render what it changed without the concepts importing the war room.
"""

from __future__ import annotations

from typing import Protocol

from bot.core.snapshot import Snapshot


class Room(Protocol):
    async def post_step(self, snap: Snapshot, step_id: str) -> None:
        """Post a step's message (keyed: once per incident and step)."""

    async def refresh(self, incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        """Re-render the header and the given step messages from the store, and wait for Slack."""

    def request_refresh(self, incident_id: str, steps: list[str] | None = None, header: bool = True) -> None:
        """The same re-render in the background: for work that must not wait for chat.update's window."""

    async def thread_ts(self, incident_id: str) -> tuple[str, str] | None:
        """Channel and ts of the header: the incident thread hangs under it."""
