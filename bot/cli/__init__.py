"""The `rollbot` command: serve, demo, sandbox, runbook, manifest, report.
"""

__all__ = ["main"]
