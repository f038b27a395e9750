# shellcheck shell=bash
# tools/setup/common.sh - helpers shared by tools/ferry and the set-up steps.
# Sourced, not run. Expects FERRY_ROOT (the repository) to be set.

# Short progress lines on stderr, so that a command's own output (ferry-sim)
# stays clean on stdout.
say() { printf 'ferry: %s\n' "$*" >&2; }
warn() { printf 'ferry: warning: %s\n' "$*" >&2; }
err() { printf 'ferry: error: %s\n' "$*" >&2; }
die() {
    printf 'ferry: error: %s\n' "$*" >&2
    exit 1
}

# Run a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root for: $* (run as root, or install sudo)"
    fi
}

# run_logged LOG CMD...: run CMD with its output going to LOG (or to the
# terminal too with FERRY_VERBOSE=1). On failure, show the end of the log.
run_logged() {
    local log=$1
    shift
    mkdir -p "$(dirname "$log")"
    local rc=0
    if [ "${FERRY_VERBOSE:-0}" = 1 ]; then
        "$@" 2>&1 | tee "$log" >&2 || rc=${PIPESTATUS[0]}
    else
        "$@" >"$log" 2>&1 || rc=$?
    fi
    if [ "$rc" -ne 0 ]; then
        printf 'ferry: command failed (exit %d): %s\n' "$rc" "$*" >&2
        printf -- '---- last lines of %s ----\n' "$log" >&2
        tail -n 40 "$log" >&2
        printf -- '---- end ----\n' >&2
    fi
    return "$rc"
}

# Seconds since the epoch, for step timings.
now_s() { date +%s; }
