"""Engine-wide mechanisms every concept uses: the services, the outbox and timers (the one way to say
"do this later, durably"), the clock, the authorization table, roles and people, the incident snapshot the views
read, the Room protocol, errors and settings. Depends on store, slack and runbook only.
"""

__all__ = ["authz", "clock", "config", "coord", "coord_redis", "decider_dm", "done_before", "drill_guard",
           "errors", "events", "heap", "logging_setup", "metrics", "once", "people", "roles", "room", "roster",
           "services", "snapshot", "tasks", "timeline", "timer_rows", "timers", "units", "wallclock", "webserver"]
