#!/usr/bin/env bash
# Sample: scenario 1, roll back the whole system (application, config, front end) to a release.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Roll the whole system in ENVIRONMENT back to RESTORE_VERSION."
rb_value_flag environment '^[a-z][a-z0-9-]{0,31}$' required "target environment, e.g. production"
rb_value_flag restore-version '^v?[0-9]+\.[0-9]+\.[0-9]+([.-][0-9A-Za-z]+)*$' required "release to restore, e.g. v2.3.1"
rb_bool_flag preserve-user-data optional "keep user data written since the release"
rb_bool_flag confirm-rollback required "confirm the complete rollback"
rb_parse "$@"

env=$(rb_arg environment)
version=$(rb_arg restore-version)
rb_step 0.5 "Complete system rollback of $env to $version"
rb_has preserve-user-data && rb_say "User data preserved (no destructive migrations)"
rb_step 0.6 "[1/4] Application services -> $version"
rb_checkpoint "[1/4] app-web rollout stalled: 2 pods not ready after 120 s"
rb_step 0.6 "[2/4] Configuration restored from release $version"
rb_step 0.6 "[3/4] Front-end bundle $version published"
rb_step 0.6 "[4/4] Background workers restarted"
rb_done "$env at $version"
