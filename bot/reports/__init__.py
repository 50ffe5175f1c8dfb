"""What happened against the plan: the history, the post-incident report, the drill scorecard, the
timeline's view. Runbook: "Post-Rollback Procedures", "Success Metrics".
"""

__all__ = ["history", "report", "scorecard", "scorecard_view", "timeline_view"]
