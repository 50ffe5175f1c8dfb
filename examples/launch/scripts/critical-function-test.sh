#!/usr/bin/env bash
# Sample: run the critical user journeys against production after the rollback.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Run the critical-path smoke tests (login, search, booking, checkout, payment)."
rb_bool_flag emergency optional "run the short emergency suite only"
rb_parse "$@"

suite="full"
rb_has emergency && suite="emergency"
rb_step 0.3 "Running the $suite critical-path suite"
rb_step 0.5 "PASS login (312 ms)"
rb_step 0.5 "PASS search (188 ms)"
rb_checkpoint "FAIL checkout: HTTP 500 from /api/checkout (3/3 attempts)"
rb_step 0.5 "PASS booking (402 ms)"
rb_step 0.5 "PASS checkout (655 ms)"
rb_step 0.5 "PASS payment authorisation, test card (731 ms)"
rb_done "5/5 critical functions pass"
