"""Rollback actions as durable runs: specs from the runbook, the execution store, requests and gates,
progress in the thread, staged traffic restore, scenarios. actions/ runs them, knowing nothing of Slack.
Runbook: Steps 3-9, "Rollback Scenarios and Procedures".
"""

__all__ = ["requests", "service", "views"]
