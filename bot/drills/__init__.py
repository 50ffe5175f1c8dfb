"""Drill incidents, manual and on the runbook's cron, scored when they close. Runbook: "Rollback Testing
and Validation".
"""

__all__ = ["service"]
