"""Keep the long-lived start-up heap out of Python's cyclic garbage collector.

After start-up the heap holds ~150k objects that live as long as the process (modules, the runbook, SQLAlchemy's
and Slack's models). Every full collection walked them all: ~200 ms with the event loop stopped, measured as the
first alert's answer time in bench/bench_alert_storm.py (a declaration took 230 ms, 180 ms of it one collection).
Frozen, a full collection walks only what requests create since.
"""

from __future__ import annotations

import gc


def settle() -> int:
    """Call once, when a long-running process has started (not in tests: frozen objects are never freed).
    Returns how many objects the collector no longer walks."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
