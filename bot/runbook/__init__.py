"""The runbook: its schema, loader and checks, templating, the procedure an incident runs (phases with the
scenario's steps) and where its Prometheus gates are answered.
"""

__all__ = ["loader", "model", "procedure", "prometheus", "show", "templating"]
