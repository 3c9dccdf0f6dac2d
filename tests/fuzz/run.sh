#!/bin/sh
# run.sh [SECONDS]: builds the libFuzzer harnesses with clang in build-fuzz/
# and runs each for SECONDS (default 60), as many at once as there are
# processors, from a copy of its seed corpus, so that the repository is not
# written. The parsers of small files (key files, the clients file, CSV) share
# one slot, a third of SECONDS each, one after the other. Exits non-zero when a harness finds a
# crash; the input that did it is kept in the printed directory.
set -eu
cd "$(dirname "$0")/../.."
seconds=${1:-60}
jobs=$(nproc 2>/dev/null || echo 2)

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDF_FUZZ=ON >/dev/null
cmake --build build-fuzz -j "$jobs" --target fuzzers

work=$(mktemp -d "${TMPDIR:-/tmp}/dealflow-fuzz-XXXXXX")

# Runs one harness; its verdict is left in $work/HARNESS/status.
run_one() {
    harness=$1
    limit=$2
    mkdir -p "$work/$harness/corpus" "$work/$harness/crashes"
    cp tests/fuzz/corpus/$harness/* "$work/$harness/corpus/"
    dict=tests/fuzz/$harness.dict # a dictionary of its own where it has one, else msgpack's
    [ -f "$dict" ] || dict=tests/fuzz/dealflow.dict
    if build-fuzz/tests/fuzz/$harness -max_total_time="$limit" -timeout=10 -rss_limit_mb=2048 \
        -dict="$dict" -artifact_prefix="$work/$harness/crashes/" \
        -print_final_stats=1 "$work/$harness/corpus" >"$work/$harness/log" 2>&1; then
        echo ok >"$work/$harness/status"
    else
        echo failed >"$work/$harness/status"
    fi
}

# Runs the harnesses of a slot (joined by +) one after the other, sharing its time.
run_slot() {
    slot_harnesses=$(echo "$1" | tr + ' ')
    count=$(echo "$slot_harnesses" | wc -w)
    each=$((seconds / count))
    [ "$each" -ge 1 ] || each=1
    for harness in $slot_harnesses; do
        echo "$harness: ${each}s"
        run_one "$harness" "$each"
    done
}

# As many slots at once as there are processors.
slots="fuzz_msgpack fuzz_event fuzz_record fuzz_request fuzz_gateway_body+fuzz_gateway_config fuzz_prometheus
    fuzz_mapping fuzz_keyfile+fuzz_clients+fuzz_csv"
harnesses=$(echo $slots | tr + ' ')
running=0
for slot in $slots; do
    run_slot "$slot" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait
        running=0
    fi
done
wait

failed=""
for harness in $harnesses; do
    if [ "$(cat "$work/$harness/status")" = ok ]; then
        echo "$harness: $(grep -E '^stat::number_of_executed_units' "$work/$harness/log" || true)"
    else
        tail -n 40 "$work/$harness/log"
        failed="$failed $harness"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzzing found crashes in:$failed (inputs and logs in $work)" >&2
    exit 1
fi
rm -rf "$work"
