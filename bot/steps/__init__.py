"""The procedure's steps as checklists: ticks, done and skip, phase progression, step windows, and the
validation checklists' views. Runbook: "Rollback Execution Procedures", Phases 1-5, "Rollback Validation Checklist".
"""

__all__ = ["checklists", "validation_view", "views"]
