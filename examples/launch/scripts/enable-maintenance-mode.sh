#!/usr/bin/env bash
# Sample: put the site behind the maintenance page while the rollback runs.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Serve the maintenance page and drain traffic from the application pool."
rb_bool_flag emergency optional "skip the 60-second customer notice"
rb_parse "$@"

if rb_has emergency; then
    rb_say "Emergency mode: no advance notice banner"
else
    rb_step 0.6 "Showing the 'maintenance in 60 s' banner"
fi
rb_step 0.5 "Switching edge routing to the maintenance page"
rb_checkpoint "edge config push rejected: 2 of 12 POPs did not acknowledge"
rb_step 0.6 "Edge config live on 12/12 POPs"
rb_step 0.5 "Draining application pool: 1,204 -> 37 -> 0 active connections"
rb_done "maintenance mode on"
