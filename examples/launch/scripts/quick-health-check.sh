#!/usr/bin/env bash
# Sample: a quick look at the services the rollback runbook cares about (stand-in for real probes).
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Probe the API, web front end, database, cache and queue; exit 3 if any is unhealthy."
rb_parse "$@"

rb_step 0.4 "Health check started (5 targets)"
rb_step 0.5 "api-gateway      GET /healthz   200 OK   84 ms"
rb_step 0.5 "web-frontend     GET /          200 OK  121 ms"
rb_checkpoint "payments-api     GET /healthz   503 Service Unavailable (error rate 23.4% > 5%)"
rb_step 0.5 "postgres-primary SELECT 1       ok       3 ms  (replica lag 0.4 s)"
rb_step 0.4 "redis-cache      PING           PONG     1 ms  (hit rate 94%)"
rb_step 0.4 "job-queue        depth 112      ok       (oldest 8 s)"
rb_done "5/5 targets healthy"
