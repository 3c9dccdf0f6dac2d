#!/bin/sh
# run.sh: installs the dependencies, builds dealflow twice (gcc; clang with
# AddressSanitizer and UndefinedBehaviorSanitizer, small flush chunks and
# short id hashes),
# runs every test on both,
# then each fuzzer for 45 seconds, as many at once as there are processors.
set -eu
cd "$(dirname "$0")/.."
sh deploy/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDF_WERROR=ON >/dev/null
cmake --build build -j "$jobs"
ctest --test-dir build --output-on-failure -j "$jobs"

# the second build also flushes every 1 000 events, commits a flush every
# 8 deals and writes its aggregate changes every 64 rows, so that the tests
# cross what large flushes and rebuilds cross, and keeps 16 bits of each
# event id's hash, so that ids collide
CC=clang cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DDF_SANITIZE=ON -DDF_WERROR=ON \
    -DDF_SMALL_FLUSH_CHUNKS=ON -DDF_SHORT_ID_HASHES=ON >/dev/null
cmake --build build-sanitize -j "$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-sanitize --output-on-failure -j "$jobs"

# libFuzzer harnesses of every parser of outside input, 45 seconds each.
sh tests/fuzz/run.sh 45
