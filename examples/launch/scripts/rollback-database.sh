#!/usr/bin/env bash
# Sample: restore the database to a backup (destructive: data written since is lost).
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Restore the primary database from RESTORE_POINT."
rb_value_flag restore-point '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' required "backup to restore, e.g. backup-20261127-0300"
rb_bool_flag confirm-data-loss required "confirm that writes since the backup are lost"
rb_parse "$@"

point=$(rb_arg restore-point)
rb_step 0.5 "Restoring postgres-primary from $point"
rb_step 0.6 "Stopping writers (app-worker scaled to 0)"
rb_step 0.7 "Restore progress: 20%"
rb_checkpoint "restore from $point failed: checksum mismatch in base backup segment 0042"
rb_step 0.7 "Restore progress: 65%"
rb_step 0.7 "Restore progress: 100%, replaying WAL to $point"
rb_step 0.5 "Replicas re-synced (lag 0.2 s); writers restarted"
rb_done "database restored to $point"
