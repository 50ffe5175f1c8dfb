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
    """A plausible incident, used to check templates at load time and to document the variables."""
    return {
        "service": {"name": "BookedBarber"},
        "incident": {
            "id": "inc-20250301-0001",
            "title": "Payment failure rate above 2%",
            "level": "immediate",  # level id
            "level_title": "Immediate",
            "scenario": "Payment System Issues",  # scenario title, or None
            "trigger": "Payment System Failure",  # trigger title, or None when declared by hand
            "phase": "Rollback Execution",  # current phase title
            "started_at": "2025-03-01 14:02 UTC",
            "elapsed_minutes": 12,
            "channel_name": "inc-20250301-payment-failure",
            "lead": "Tara Lin",
            "is_drill": False,
        },
        "decision": {
            "approvers": ["Tara Lin", "Dev Okafor"],
            "decided_at": "2025-03-01 14:05 UTC",
        },
        "rollback": {
            "version": "v2.4.1",
            "completed_at": "2025-03-01 14:24 UTC",
            "duration_minutes": 19,
        },
    }
