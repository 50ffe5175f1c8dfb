#!/usr/bin/env bash
# Sample: scenario 4, contain a payment incident without losing money in flight.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Stop new payments, keep pending ones, and restore the last payment configuration."
rb_bool_flag disable-new-payments optional "refuse new payment attempts with a friendly message"
rb_bool_flag preserve-pending-transactions optional "let in-flight transactions settle"
rb_bool_flag rollback-payment-config optional "restore the previous payment provider configuration"
rb_parse "$@"

rb_step 0.3 "Payment rollback started"
if rb_has disable-new-payments; then
    rb_step 0.5 "New payments disabled (checkout shows 'payments paused')"
fi
if rb_has preserve-pending-transactions; then
    rb_step 0.6 "Waiting for 23 pending transactions to settle: 23 -> 4 -> 0"
fi
rb_checkpoint "payment provider rejected the configuration change (HTTP 409)"
if rb_has rollback-payment-config; then
    rb_step 0.6 "Payment configuration restored to revision 41 (webhook secret unchanged)"
fi
rb_step 0.4 "Reconciliation: 0 orphaned charges"
rb_done "payments contained"
