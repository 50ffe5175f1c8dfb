#!/usr/bin/env bash
# Sample: clear caches so nobody is served pages from the bad release.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Flush the application cache and invalidate the CDN."
rb_bool_flag flush-all optional "flush every cache namespace, not only pages and assets"
rb_parse "$@"

if rb_has flush-all; then
    rb_step 0.5 "Flushing all redis-cache namespaces (sessions excluded)"
else
    rb_step 0.5 "Flushing redis-cache namespaces: pages, assets"
fi
rb_step 0.5 "Redis: 1,832,114 keys removed"
rb_checkpoint "CDN invalidation rejected: rate limit (429) on distribution E2DEMO"
rb_step 0.6 "CDN invalidation /* submitted (id I7ZK3DEMO)"
rb_step 0.6 "CDN invalidation complete on all edge locations"
rb_done "caches cleared"
