#!/usr/bin/env bash
# Sample: scenario 2, roll the database back to a restore point (destructive).
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Restore the database to RESTORE_POINT, optionally replaying recent safe writes."
rb_value_flag restore-point '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' required "backup to restore, e.g. backup-20261127-0300"
rb_bool_flag preserve-recent-data optional "re-apply writes after the restore point that pass validation"
rb_bool_flag confirm-data-loss required "confirm that other writes since the restore point are lost"
rb_parse "$@"

point=$(rb_arg restore-point)
rb_step 0.5 "Database rollback to $point"
rb_step 0.6 "Exporting writes since $point for review (18,442 rows)"
rb_step 0.7 "Restoring base backup $point: 50%"
rb_checkpoint "restore aborted: WAL segment missing for $point"
rb_step 0.7 "Restoring base backup $point: 100%"
if rb_has preserve-recent-data; then
    rb_step 0.6 "Re-applying validated recent writes: 18,101 applied, 341 quarantined"
fi
rb_step 0.4 "Integrity checks passed (foreign keys, row counts)"
rb_done "database at $point"
