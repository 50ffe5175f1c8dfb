#!/usr/bin/env bash
# Sample: take an emergency snapshot of the production database before anything is rolled back.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Snapshot the primary database; the snapshot is named after TIMESTAMP (default: now, UTC)."
rb_optvalue_flag timestamp '^[0-9]{8}([-_T]?[0-9]{4,6})?Z?$' "name the snapshot after this time (bare: now, UTC)"
rb_parse "$@"

stamp=$(rb_arg timestamp)
[[ -n $stamp ]] || stamp=$(TZ=UTC printf '%(%Y%m%d-%H%M%S)T' -1)
name="emergency-$stamp"
rb_step 0.5 "Requesting snapshot $name of postgres-primary (412 GiB)"
rb_step 0.6 "Freezing writes for a consistent point: pg_start_backup('$name')"
rb_step 0.6 "Snapshot progress: 35%"
rb_checkpoint "snapshot $name failed: storage quota exceeded on backup volume"
rb_step 0.6 "Snapshot progress: 78%"
rb_step 0.5 "Snapshot progress: 100%, verifying checksum"
rb_step 0.3 "Writes resumed; snapshot $name stored in s3://rollbot-demo-backups/db/"
rb_done "snapshot $name ready"
