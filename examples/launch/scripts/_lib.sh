# Shared helpers for the sample rollback scripts: flag parsing, paced progress output, demo knobs.
# Sourced by each script, never run on its own.
#
# Environment knobs (the demo and the tests use them):
#   ROLLBOT_SCRIPT_SPEED  divisor for every pause (default 1; ROLLBOT_SCRIPT_SPEED=20 runs 20 times faster)
#   ROLLBOT_FAIL          script name (with or without .sh), comma-separated names, or "all":
#                         fail with exit 3 after some output
#   ROLLBOT_HANG          same selection: hang forever in a child `sleep` (exercises timeout and Cancel)

RB_SCRIPT=$(basename "$0" .sh)
RB_SUMMARY=""
declare -A RB_KIND=() RB_PATTERN=() RB_REQUIRED=() RB_HELP=() RB_ARGS=()
RB_ORDER=()

RB_SPEED=${ROLLBOT_SCRIPT_SPEED:-1}
if ! [[ $RB_SPEED =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $RB_SPEED =~ ^0+([.]0+)?$ ]]; then
    echo "$RB_SCRIPT: ROLLBOT_SCRIPT_SPEED must be a positive number, got '$RB_SPEED'" >&2
    exit 2
fi

# --- flag declarations -------------------------------------------------------------------------------
# rb_value_flag NAME REGEX required|optional "help"   --name VALUE (or --name=VALUE), VALUE must match REGEX
# rb_bool_flag  NAME required|optional "help"         --name
# rb_optvalue_flag NAME REGEX "help"                  --name, --name VALUE or --name=VALUE (RB_ARGS: "" if bare)
rb_value_flag() {
    RB_KIND[$1]=value RB_PATTERN[$1]=$2 RB_REQUIRED[$1]=$3 RB_HELP[$1]=$4
    RB_ORDER+=("$1")
}
rb_bool_flag() {
    RB_KIND[$1]=bool RB_REQUIRED[$1]=$2 RB_HELP[$1]=$3
    RB_ORDER+=("$1")
}
rb_optvalue_flag() {
    RB_KIND[$1]=optvalue RB_PATTERN[$1]=$2 RB_REQUIRED[$1]=optional RB_HELP[$1]=$3
    RB_ORDER+=("$1")
}

rb_usage() {
    local name synopsis="" metavar
    for name in "${RB_ORDER[@]}"; do
        metavar=""
        if [[ ${RB_KIND[$name]} != bool ]]; then
            metavar=" ${name^^}"
            metavar=${metavar//-/_}
            [[ ${RB_KIND[$name]} == optvalue ]] && metavar=" [${metavar# }]"
        fi
        if [[ ${RB_REQUIRED[$name]} == required ]]; then
            synopsis+=" --$name$metavar"
        else
            synopsis+=" [--$name$metavar]"
        fi
    done
    echo "usage: $RB_SCRIPT.sh$synopsis"
    [[ -n $RB_SUMMARY ]] && echo "$RB_SUMMARY"
    for name in "${RB_ORDER[@]}"; do
        printf '  --%-32s %s\n' "$name" "${RB_HELP[$name]}"
    done
    return 0
}

rb_usage_error() {
    {
        echo "$RB_SCRIPT: $*"
        rb_usage
    } >&2
    exit 2
}

rb_parse() {
    local arg name value has_value kind
    while (($#)); do
        arg=$1
        shift
        case $arg in
            -h | --help)
                rb_usage
                exit 0
                ;;
            --*=*)
                name=${arg%%=*}
                name=${name#--}
                value=${arg#*=}
                has_value=1
                ;;
            --?*)
                name=${arg#--}
                value=""
                has_value=0
                ;;
            *) rb_usage_error "unexpected argument: $arg" ;;
        esac
        kind=${RB_KIND[$name]:-}
        [[ -n $kind ]] || rb_usage_error "unknown flag: --$name"
        if [[ $kind == bool ]]; then
            ((has_value == 0)) || rb_usage_error "--$name takes no value"
            RB_ARGS[$name]=1
        elif [[ $kind == optvalue && $has_value == 0 && (! $# -gt 0 || ${1:-} == -*) ]]; then
            RB_ARGS[$name]=""
        else
            if ((has_value == 0)); then
                (($#)) || rb_usage_error "--$name needs a value"
                value=$1
                shift
            fi
            [[ $value =~ ${RB_PATTERN[$name]} ]] || rb_usage_error "--$name: invalid value '$value'"
            RB_ARGS[$name]=$value
        fi
    done
    for name in "${RB_ORDER[@]}"; do
        if [[ ${RB_REQUIRED[$name]} == required && -z ${RB_ARGS[$name]:-} ]]; then
            rb_usage_error "missing required flag --$name"
        fi
    done
}

# rb_arg NAME: the flag's value ("1" for a given boolean flag, "" when absent)
rb_arg() { echo "${RB_ARGS[$1]:-}"; }
rb_has() { [[ -n ${RB_ARGS[$1]:-} ]]; }

# --- output ------------------------------------------------------------------------------------------
rb_say() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*"; }

# rb_pause SECONDS: sleep, divided by ROLLBOT_SCRIPT_SPEED
rb_pause() { sleep "$(awk -v s="$1" -v k="$RB_SPEED" 'BEGIN { printf "%.3f", s / k }')"; }

# rb_step SECONDS MESSAGE: say, then take that long
rb_step() {
    local seconds=$1
    shift
    rb_say "$*"
    rb_pause "$seconds"
}

# --- demo knobs --------------------------------------------------------------------------------------
rb_selected() {
    local list=",${1:-},"
    list=${list// /}
    [[ $list == *",all,"* || $list == *",$RB_SCRIPT,"* || $list == *",$RB_SCRIPT.sh,"* ]]
}

# rb_checkpoint "ERROR MESSAGE": where the script fails (ROLLBOT_FAIL) or hangs (ROLLBOT_HANG) when asked.
rb_checkpoint() {
    if rb_selected "${ROLLBOT_HANG:-}"; then
        rb_say "waiting for the remote side to answer..."
        sleep 2147483647 &
        local child=$!
        rb_say "(ROLLBOT_HANG: hanging in child sleep pid $child)"
        wait "$child" || true
        rb_say "ERROR: interrupted while waiting"
        exit 4
    fi
    if rb_selected "${ROLLBOT_FAIL:-}"; then
        rb_say "ERROR: $*"
        rb_say "$RB_SCRIPT: FAILED (exit 3)"
        exit 3
    fi
}

rb_done() { rb_say "$RB_SCRIPT: DONE - $*"; }
