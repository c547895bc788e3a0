#!/bin/sh
# SPDX-License-Identifier: MIT
# Run every libFuzzer target for a fixed time, one after the other, each on a
# scratch copy of its seed corpus (the committed seeds stay as they are).
# Crashes land in $WORK/art/; add a crasher to tests/fuzz/corpus/<name>/
# once its bug is understood and fixed.
#   CC=clang cmake -S . -B build-fuzz -DTT_FUZZ=ON -DTT_ASAN=ON -DTT_UBSAN=ON
#   cmake --build build-fuzz -j2
#   tests/fuzz/run.sh build-fuzz 60
# TT_FUZZ_HANDLER_SECONDS gives the handler target (the whole request path,
# the slowest per input) its own, longer slice; it runs on every core
# (libFuzzer's fork mode) when there are several.
set -eu
build=${1:?usage: run.sh BUILD_DIR [SECONDS] [TARGET...]}
secs=${2:-60}
shift 2 2>/dev/null || shift $#
targets=${*:-codec schema handler client}
here=$(cd "$(dirname "$0")" && pwd)
work=${WORK:-$(mktemp -d /tmp/tt-fuzz.XXXXXX)}
mkdir -p "$work/art"
status=0
for t in $targets; do
	mkdir -p "$work/$t"
	cp "$here/corpus/$t/"* "$work/$t/"
	s=$secs
	par=""
	if [ "$t" = handler ]; then
		s=${TT_FUZZ_HANDLER_SECONDS:-$secs}
		cores=$(nproc 2>/dev/null || echo 1)
		[ "$cores" -gt 1 ] && par="-fork=$cores"
	fi
	echo "fuzz_$t: ${s}s${par:+ ($par)}, corpus $work/$t"
	if ! "$build/fuzz_${t}_lf" $par -max_total_time="$s" -print_final_stats=1 \
		-artifact_prefix="$work/art/$t-" "$work/$t" >"$work/$t.log" 2>&1; then
		echo "fuzz_$t: FAILED, see $work/$t.log and $work/art/"
		# the finding itself, so that a CI log shows the cause
		grep -E -B 4 -A 30 '^==[0-9]+==ERROR|runtime error|^SUMMARY|deadly signal|Test unit written' \
			"$work/$t.log" | head -60 || tail -40 "$work/$t.log"
		for a in "$work/art/$t-"*; do
			[ -f "$a" ] && echo "fuzz_$t: input (base64): $(base64 -w0 "$a" | head -c 4000)"
		done
		status=1
	fi
	# how many inputs ran (fork mode reports them on its status lines)
	grep -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$work/$t.log" ||
		grep -E '^#[0-9]+: ' "$work/$t.log" | tail -1 || true
done
exit $status
