#!/usr/bin/env bash
# Sample: shift traffic back onto the rolled-back application, one stage at a time.
set -euo pipefail
# shellcheck source=_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/_lib.sh"

RB_SUMMARY="Route PERCENTAGE of traffic to the application: one value (e.g. 50) or increasing stages (25,50,75,100)."
rb_value_flag percentage '^[0-9]{1,3}(,[0-9]{1,3})*$' required "a percentage, or comma-separated increasing stages"
rb_parse "$@"

IFS=, read -r -a stages <<<"$(rb_arg percentage)"
previous=0
for pct in "${stages[@]}"; do
    pct=$((10#$pct))
    ((pct >= 1 && pct <= 100)) || rb_usage_error "--percentage: $pct is not within 1..100"
    ((pct > previous)) || rb_usage_error "--percentage: stages must increase"
    previous=$pct
done

first=1
for pct in "${stages[@]}"; do
    pct=$((10#$pct))
    rb_step 0.5 "Routing $pct% of traffic to the application pool"
    if ((first)); then
        rb_checkpoint "at $pct%: error rate 7.9% exceeds the 2% threshold; traffic held at $pct%"
        first=0
    fi
    rb_step 0.6 "At $pct%: error rate 0.3%, p99 latency 412 ms, 5xx 0.1%"
done
rb_done "traffic at ${stages[-1]}%"
