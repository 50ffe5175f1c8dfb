"""The Slack-facing surfaces: each module registers its Bolt listeners, /rollback subcommands or web routes.

Thin by rule: parse, authorize, ack, call the engine. `register(app)` is what the composition root
(bot/app.py) calls; handlers see the running bot only as `handlers.app.App`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from handlers import (
    alerts,
    alerts_resolved,
    approvals,
    authz,
    checklists,
    commands,
    comms,
    drills,
    escalation,
    executions,
    health,
    outbox,
    silences,
    slack_events,
    triage,
)

if TYPE_CHECKING:
    from handlers.app import App

__all__ = ["register", "socket_mode_handler"]

socket_mode_handler = slack_events.socket_mode_handler


def register(app: App) -> None:
    """Every Bolt listener and /rollback subcommand (the authorization middleware first), then the web routes."""
    for module in (authz, commands, slack_events, checklists, executions, drills, approvals, escalation, comms,
                   silences, triage, alerts_resolved, outbox):
        module.register(app)
    for routes in (slack_events, alerts, health):
        routes.add_routes(app.web, app)
