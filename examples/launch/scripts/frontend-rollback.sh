#!/usr/bin/env bash
# Sample: scenario 3, roll back the web front end only.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Publish front-end VERSION again, optionally invalidating the CDN."
rb_value_flag version '^v?[0-9]+\.[0-9]+\.[0-9]+([.-][0-9A-Za-z]+)*$' required "front-end version, e.g. v2.3.1"
rb_bool_flag cdn-invalidation optional "invalidate cached assets on the CDN"
rb_bool_flag preserve-backend optional "leave the back-end services untouched"
rb_parse "$@"

version=$(rb_arg version)
rb_step 0.5 "Front-end rollback to $version"
rb_has preserve-backend && rb_say "Back end untouched (API compatible with $version)"
rb_step 0.6 "Publishing bundle $version (1,204 assets)"
rb_checkpoint "bundle $version not found in the artifact store"
if rb_has cdn-invalidation; then
    rb_step 0.6 "CDN invalidation of /static/* and /index.html complete"
fi
rb_step 0.4 "Smoke check: index.html references $version assets"
rb_done "front end at $version"
