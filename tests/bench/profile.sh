#!/bin/sh
# SPDX-License-Identifier: MIT
# Profile the server while tutti-bench drives one scenario (RESULTS.md's
# evidence). Usage:
#   tests/bench/profile.sh OUT.data DELAY SECONDS BUILD_DIR SCENARIO [bench options]
# e.g. tests/bench/profile.sh /tmp/fan1000.data 3 4 /tmp/build-bench fanout --subs 1000 --duration 8
# then: perf report -i OUT.data --no-children --sort dso,symbol --stdio
# (--call-graph dwarf in PERF_CG gives user-space callers: PERF_CG="dwarf,16384")
set -eu
out=$1 delay=$2 secs=$3 build=$4
shift 4
"$build/tutti-bench" -q "$@" &
bench=$!
sleep "$delay"
server=$(pgrep -P "$bench" | head -n 1)
[ -n "$server" ] || { echo "profile.sh: no server child of $bench" >&2; exit 1; }
perf record -F 999 --call-graph "${PERF_CG:-fp}" -p "$server" -o "$out" -- sleep "$secs" >/dev/null 2>&1
wait "$bench"
