"""An incident's life: declare (from /rollback, a form or an alert), the war room (channel, invites,
pinned header, Phase 1), its topic and bookmarks, parked work made visible, and resolution (validation lists,
summary, report upload). Runbook: "Step 1: Incident Detection and Alert", "Post-Rollback Procedures".
"""

__all__ = ["declare_view", "header", "parked", "parked_view", "resolution", "service", "status_view", "warroom"]
