"""Customer and internal communications: drafts from the runbook's templates at each moment, approval,
editing, sending, the status page. Runbook: "Step 10: Communication and Documentation".
"""

__all__ = ["service", "views"]
