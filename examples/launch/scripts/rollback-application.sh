#!/usr/bin/env bash
# Sample: redeploy a known-good application version (stand-in for the deploy tooling).
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Roll the application back to VERSION."
rb_value_flag version '^v?[0-9]+\.[0-9]+\.[0-9]+([.-][0-9A-Za-z]+)*$' required "version to roll back to, e.g. v2.3.1"
rb_bool_flag confirm-rollback required "confirm that production is rolled back"
rb_bool_flag preserve-data optional "keep data written since the release"
rb_parse "$@"

version=$(rb_arg version)
rb_step 0.5 "Rolling back application to $version"
rb_has preserve-data && rb_say "Data preserved: schema-compatible rollback, no migrations reverted"
rb_step 0.6 "Pulling image registry.example.com/app:$version (sha256:4f1c...9a2e)"
rb_step 0.6 "Updating deployment app-web: 0/8 pods on $version"
rb_checkpoint "deployment app-web: pods in CrashLoopBackOff on $version (3/8), rollout aborted"
rb_step 0.6 "Updating deployment app-web: 4/8 pods on $version"
rb_step 0.6 "Updating deployment app-web: 8/8 pods on $version, readiness passing"
rb_step 0.5 "Updating deployment app-worker: 4/4 pods on $version"
rb_done "application at $version"
