#!/bin/sh
# run_spin.sh - model-check the ring signalling protocol with spin.
#
# usage: run_spin.sh SPIN MODEL.pml WORKDIR      (C compiler: $CC, default cc)
#
# What it proves: the correct model (tests/model/ring_signal.pml) has no
# assertion violation, no invalid end state (deadlock: a party asleep for
# ever), and satisfies its LTL properties `delivered` and `no_lost_wakeup`
# under weak fairness (acceptance-cycle search, pan -a -f), at two sizes.
# And the check has teeth: for each deliberately broken variant
# (BUG_NO_RECHECK, BUG_NO_FENCE, BUG_LATE_HEAD) spin must report the
# expected counterexample, or this test fails.
#
# Exit status: 0 pass, 1 fail, 77 skip (spin not installed).
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 SPIN MODEL.pml WORKDIR" >&2
    exit 1
fi
SPIN=$1
MODEL=$2
WORK=$3
CC=${CC:-cc}

if ! command -v "$SPIN" >/dev/null 2>&1; then
    echo "SKIP: spin not found"
    exit 77
fi

mkdir -p "$WORK" || exit 1
cp "$MODEL" "$WORK/ring_signal.pml" || exit 1
cd "$WORK" || exit 1

PAN_OPTS="-w22" # 4M-slot hash table: far more than the models need
status=0

# build DEFINES: generate and compile the verifiers for one variant:
# pan_safety (assertions + invalid end states) and pan_ltl (never claims).
build() {
    rm -f pan.* pan_safety pan_ltl _spin_nvr.tmp ./*.trail
    # shellcheck disable=SC2086 # DEFINES and CC are word lists
    if ! "$SPIN" $1 -a ring_signal.pml >spin.log 2>&1; then
        cat spin.log
        return 1
    fi
    # shellcheck disable=SC2086
    $CC -O1 -w -DNOCLAIM -o pan_safety pan.c && $CC -O1 -w -o pan_ltl pan.c
}

# errors FILE: the error count pan reported (empty if it did not finish).
errors() {
    sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$1" | tail -n 1
}

# show_trail DEFINES: replay the counterexample, for the log.
show_trail() {
    if [ -f ring_signal.pml.trail ]; then
        # shellcheck disable=SC2086
        "$SPIN" $1 -t -p -g -l ring_signal.pml 2>&1 | tail -n 60
    fi
}

# expect_pass NAME DEFINES: every check must report 0 errors.
expect_pass() {
    name=$1
    defs=$2
    if ! build "$defs"; then
        echo "FAIL $name: could not build the verifier"
        status=1
        return
    fi
    for run in safety delivered no_lost_wakeup; do
        if [ $run = safety ]; then
            ./pan_safety $PAN_OPTS >pan.out 2>&1
        else
            ./pan_ltl $PAN_OPTS -a -f -N $run >pan.out 2>&1
        fi
        n=$(errors pan.out)
        if [ "$n" = 0 ] && ! grep -qi "search not completed\|max search depth too small" pan.out; then
            echo "ok   $name: $run ($(grep -o '[0-9]* states, stored' pan.out))"
        else
            echo "FAIL $name: $run: errors: ${n:-?}"
            cat pan.out
            show_trail "$defs"
            status=1
        fi
    done
}

# expect_bug NAME DEFINES RUN:PATTERN...: each RUN (safety or an LTL name)
# must report an error whose message matches its PATTERN.
expect_bug() {
    name=$1
    defs=$2
    shift 2
    if ! build "$defs"; then
        echo "FAIL $name: could not build the verifier"
        status=1
        return
    fi
    for check in "$@"; do
        run=${check%%:*}
        pattern=${check#*:}
        if [ "$run" = safety ]; then
            ./pan_safety $PAN_OPTS >pan.out 2>&1
        else
            ./pan_ltl $PAN_OPTS -a -f -N "$run" >pan.out 2>&1
        fi
        n=$(errors pan.out)
        if [ -n "$n" ] && [ "$n" -gt 0 ] && grep -q "$pattern" pan.out; then
            echo "ok   $name: $run: counterexample found as expected ($(grep -m1 "$pattern" pan.out))"
        else
            echo "FAIL $name: $run: spin found no '$pattern' (errors: ${n:-?}); the model cannot fail?"
            cat pan.out
            status=1
        fi
    done
}

echo "== correct protocol"
expect_pass "nbuf=2 cap=2" "-DNBUF=2 -DCAP=2 -DN=5"
expect_pass "nbuf=3 cap=4" "-DNBUF=3 -DCAP=4 -DN=7"

echo "== broken variants (each must fail)"
expect_bug "no re-check" "-DBUG_NO_RECHECK" \
    "safety:invalid end state" "no_lost_wakeup:acceptance cycle"
expect_bug "no full fence" "-DBUG_NO_FENCE" \
    "safety:invalid end state" "no_lost_wakeup:acceptance cycle"
expect_bug "late head publish" "-DBUG_LATE_HEAD" "safety:assertion violated"

exit $status
