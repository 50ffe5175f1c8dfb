"""Communication templates: Jinja2 in a sandbox, strict about undefined names.

The runbook's templates are authored by people other than the bot's developers, so they run in
`SandboxedEnvironment` (no attribute tricks reach Python internals) with `StrictUndefined` (a misspelt
variable fails loudly instead of posting an empty string to customers).

The context every template may use is the shape of `sample_context()`: the comms engine fills the same
keys from a real incident. Every key is always present; values not known yet (the rollback version before
the decision, say) are None, so templates test them with `{% if rollback.version %}`.
"""

from __future__ import annotations

from typing import Any

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


def compile_template(template_body: str) -> Template:
    """Parse a template; raises jinja2.TemplateSyntaxError (with `lineno`) when it is malformed."""
    return _env.from_string(template_body)


def render_template(template_body: str, context: dict[str, Any]) -> str:
    """Render in the sandbox; raises jinja2.UndefinedError for a name the context lacks."""
    return compile_template(template_body).render(**context).strip()


def sample_context() -> dict[str, Any]:
    """A plausible incident, used to check templates at load time and to document the variables.

    Times are in the audience's time zone (the runbook's `comms.timezone`) with UTC beside them. Facts the
    incident has not established are None or False: a template states a claim only under `{% if %}` of its fact
    (`data.preserved` only when a snapshot succeeded and nothing was restored)."""
    return {
        "service": {"name": "BookedBarber"},
        "incident": {
            "id": "inc-20250301-0001",
            "title": "Payment System Failure",  # the trigger's title (never the raw alert name)
            "level": "immediate",  # level id
            "level_title": "Immediate",
            "scenario": "Payment System Issues",  # scenario title, or None
            "trigger": "Payment System Failure",  # trigger title, or None when declared by hand
            "impact": "card payments are failing",  # the runbook's statement for the trigger or scenario
            "impact_past": "card payments failed",
            "phase": "Rollback Execution",  # current phase title
            "started_at": "1 March 2025, 09:02 EST (14:02 UTC)",  # when the problem started (the alert's start)
            "declared_at": "09:03 EST (14:03 UTC)",
            "elapsed_minutes": 12,
            "channel_name": "inc-20250301-payment-failure",
            "lead": "Tara Lin",
            "is_drill": False,
            "resolved_at": None,
        },
        "impact": {  # customers' side: from the problem starting to the service being restored
            "started_at": "09:02 EST (14:02 UTC)",
            "ended_at": "09:24 EST (14:24 UTC)",  # None while it lasts
            "minutes": 22,  # so far, while it lasts
            "ongoing": False,
        },
        "objectives": {"rto_minutes": 30},
        "decision": {
            "approvers": ["Tara Lin", "Dev Okafor"],
            "decided_at": "09:05 EST (14:05 UTC)",
            "approved": True,
        },
        "rollback": {
            "version": "v2.4.1",
            "completed_at": "09:24 EST (14:24 UTC)",
            "duration_minutes": 19,  # decision to completion
        },
        "data": {
            "snapshot_taken": True,
            "snapshot_at": "09:08 EST (14:08 UTC)",
            "snapshot_failed": False,
            "restored": False,  # a restore from backup ran: data since the restore point lost
            "restored_at": None,
            "restore_point": None,
            "preserved": True,  # snapshot taken and nothing restored
        },
        "update": {
            "next_minutes": 15,  # the template's next_update_minutes, or None
            "since": "09:03 EST (14:03 UTC)",  # this audience's previous update, or None
            "changes": ["09:05 EST (14:05 UTC): Rollback approved by Tara Lin"],  # key events since then
        },
    }
