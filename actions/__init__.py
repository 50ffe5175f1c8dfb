"""Running rollback actions safely; knows nothing of Slack or the store.

params (typed parameters, argv rendering) -> shell / http / check (one run each, redacted, capped)
-> runner (concurrent executions by id, cancel, dry run) with progress (throttled snapshots) and
traffic (staged restore gated by checks). Dependencies point handlers -> bot -> actions, never back.
"""
