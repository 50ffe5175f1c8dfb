#!/usr/bin/env bash
# Sample: copy the live configuration aside so the rollback can itself be undone.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Back up application, feature-flag and load-balancer configuration."
rb_bool_flag emergency optional "skip the non-essential archives to finish quickly"
rb_parse "$@"

rb_has emergency && rb_say "Emergency mode: essential configuration only"
rb_step 0.5 "Exporting application config (42 keys)"
rb_step 0.5 "Exporting feature flags (17 flags, 3 enabled since last release)"
rb_checkpoint "cannot read load-balancer config: permission denied for role rollbot-backup"
rb_step 0.5 "Exporting load-balancer rules (6 pools)"
if ! rb_has emergency; then
    rb_step 0.6 "Archiving TLS and DNS settings"
fi
rb_step 0.3 "Stored as config-backup-$(TZ=UTC printf '%(%Y%m%d-%H%M%S)T' -1).tar.gz (sha256 verified)"
rb_done "configuration backed up"
