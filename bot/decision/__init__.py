"""The rollback decision and action approvals: the authorization matrix's policies, votes, levels,
overrides, deadlines that escalate and never lock, typed confirmation. Runbook: "Rollback Decision Criteria",
"Rollback Authorization Matrix", "Step 2: Rollback Decision".
"""

__all__ = ["approvals", "confirm_view", "views"]
