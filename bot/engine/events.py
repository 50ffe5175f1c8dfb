"""In-process domain events: engine modules react to each other without importing each other.

Events (keyword arguments in brackets):
  war_room_ready [incident_id]            channel, invites, header and Phase 1 are up
  phase_started [incident_id, phase_id]   a phase's steps were posted (Phase 1 included)
  step_completed [incident_id, step_id, status]   done or skipped
  decided [incident_id, decision]         the rollback decision: approved | declined
  decision_overdue [incident_id]          the level's decision deadline passed undecided
  action_approved [incident_id, execution_id]   a gated action's policy and typed confirmation are satisfied
  action_declined [incident_id, execution_id]   an authorized approver declined a gated action
  execution_finished [incident_id, execution_id, action_id, outcome]
  moment [incident_id, moment]            declared | traffic_diverted | rollback_completed | resolved (comms)
  closed [incident_id]                    resolved or cancelled: timers and the ladder stop

The state change that an event reports is already committed when the event is emitted.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
Listener = Callable[..., Awaitable[None]]


class EventBus:
    def __init__(self) -> None:
        self._listeners: defaultdict[str, list[Listener]] = defaultdict(list)

    def on(self, name: str, listener: Listener) -> None:
        self._listeners[name].append(listener)

    async def emit(self, name: str, **kwargs: Any) -> None:
        """Run every listener in order; one listener's failure is logged and does not stop the rest."""
        for listener in list(self._listeners[name]):
            try:
                await listener(**kwargs)
            except Exception:
                log.exception("listener %s for %s failed", getattr(listener, "__qualname__", listener), name)
