#!/bin/sh
# scripts/fuzz.sh -- run libFuzzer targets and write a table of executions,
# coverage and crashes per target (`make fuzz`).
#
#   scripts/fuzz.sh TARGET...           run them, then write the table
#   scripts/fuzz.sh --table TARGET...   only write the table, from the logs
#                                       the last run of each target left
#
# Environment (set by mk/reliability.mk):
#   FUZZ_BUILD    where the binaries are (FUZZ_BUILD/fuzz_<t>), new corpus
#                 inputs go (FUZZ_BUILD/corpus/<t>), the logs
#                 (FUZZ_BUILD/fuzz_<t>.log) and crash inputs
#                 (FUZZ_BUILD/crash-<t>-<hash>)              (build-fuzz)
#   FUZZ_SECONDS  seconds per target                        (60)
#   FUZZ_RUNS     executions per target instead (libFuzzer -runs; the
#                 time limit is then FUZZ_SECONDS if set, else none)
#   FUZZ_TARGET_RUNS  "<t>=<runs> ...": those targets run for that many
#                 executions, with no time limit, unless FUZZ_RUNS is set
#   FUZZ_ARGS     more libFuzzer flags
#   FUZZ_JOBS     targets run at once                       (1)
#   FUZZ_RESULTS  the table (Markdown)                      (fuzz/RESULTS.md)
#
# The committed seeds (fuzz/corpus/<t>) are only read.  Every target runs
# even after a crash; the exit status is 1 when any target failed.
set -u
build=${FUZZ_BUILD:-build-fuzz}
results=${FUZZ_RESULTS:-fuzz/RESULTS.md}
runs=${FUZZ_RUNS:-}
if [ -n "$runs" ]; then
    limit="-runs=$runs -max_total_time=${FUZZ_SECONDS:-0}"
    budget="$runs executions"
else
    limit="-max_total_time=${FUZZ_SECONDS:-60}"
    budget="${FUZZ_SECONDS:-60} s"
fi

# The executions asked of target $1 by FUZZ_TARGET_RUNS (empty: none, or
# FUZZ_RUNS is set and holds for every target).
target_runs() {
    [ -z "$runs" ] || return 0
    for tr in ${FUZZ_TARGET_RUNS:-}; do
        case $tr in "$1="*) echo "${tr#*=}"; return 0 ;; esac
    done
}

# The table row of target $1 from its log; "crashed" when the run failed.
row() {
    log="$build/fuzz_$1.log"
    if [ ! -f "$log" ]; then
        printf '| `fuzz_%s` | not run | | | | | | |\n' "$1"
        return
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^fuzz\.sh: exit [0-9]* after \([0-9]*\) s$/\1/p' "$log" | tail -1)
    [ -n "$secs" ] || secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    corp=$(grep -o 'corp: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    crashes=0
    if grep -q -e '^==[0-9]*==ERROR' -e 'deadly signal' -e '^SUMMARY: ' "$log" ||
       grep -q '^fuzz\.sh: exit [1-9]' "$log"; then
        crashes=1
    fi
    printf '| `fuzz_%s` | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "${execs:-?}" \
        "${rate:-?}" "${secs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
}

table() {
    mkdir -p "$(dirname "$results")"
    {
        echo "# Fuzzing results"
        echo
        echo "Written by \`make fuzz\` (scripts/fuzz.sh) on $(date -u +%Y-%m-%d) from the last run of"
        others=
        for t in "$@"; do
            tr=$(target_runs "$t")
            [ -z "$tr" ] || others="$others, \`fuzz_$t\` $tr executions"
        done
        echo "each target, $budget per target${others},"
        echo "$(clang --version 2>/dev/null | head -1 | sed 's/ (.*//'), libFuzzer with ASan + UBSan, $(nproc) cores."
        echo "Coverage is libFuzzer's: \`cov\` edges and \`ft\` features reached, \`corpus\` the inputs"
        echo "kept (from the committed seeds in \`fuzz/corpus/<target>\` and \`$build/corpus/<target>\`)."
        echo
        echo "| target | executions | exec/s | seconds | cov | ft | corpus | crashes |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
        for t in "$@"; do row "$t"; done
    } > "$results"
    echo "== fuzz: table in $results"
}

case "${1:-}" in
--one)      # one target: run it, log its exit status and time
    t=$2
    mkdir -p "$build/corpus/$t"
    log="$build/fuzz_$t.log"
    tr=$(target_runs "$t")
    if [ -n "$tr" ]; then
        limit="-runs=$tr -max_total_time=0"
        budget="$tr executions"
    fi
    echo "== fuzz_$t: $budget"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$build/fuzz_$t" $limit -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/crash-$t-" ${FUZZ_ARGS:-} \
        "$build/corpus/$t" "fuzz/corpus/$t" 2>"$log"
    rc=$?
    echo "fuzz.sh: exit $rc after $(( $(date +%s) - start )) s" >> "$log"
    if [ "$rc" != 0 ]; then
        tail -60 "$log"
        echo "== fuzz_$t: FAILED (input: $(ls "$build"/crash-"$t"-* 2>/dev/null | tail -1))"
    fi
    echo "== $(row "$t")"
    exit "$rc"
    ;;
--table)
    shift
    table "$@"
    exit 0
    ;;
esac

for t in "$@"; do echo "$t"; done | xargs -P "${FUZZ_JOBS:-1}" -n 1 "$0" --one
status=$?
table "$@"
[ "$status" = 0 ] && echo "== fuzz: all targets clean"
exit $status
