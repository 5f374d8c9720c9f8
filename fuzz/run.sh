#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer targets (into build-fuzz/, when not built yet) and run
# each one for a bounded time on a copy of its seed corpus.
#
#     fuzz/run.sh [SECONDS] [TARGET...]      default: 30 s, every target
#
# Prints one line per target, "PASS fuzz_<name>" or "FAIL fuzz_<name>", and
# exits 1 when any target failed. A crashing input is left in
# $FUZZ_WORK/artifacts/<target>/ (FUZZ_WORK defaults to a fresh temp dir,
# kept when something failed); add it under fuzz/corpus/<name>/ as a
# regression seed once the bug is fixed. New corpus entries found during the
# run go to the copy only: the repository's corpus is never touched.
#
# Environment: CC (default clang), BUILD_DIR (default <repo>/build-fuzz),
# FUZZ_JOBS (parallel workers per target, default 1), FUZZ_WORK.
set -u

seconds=${1:-30}
[ $# -gt 0 ] && shift
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
build=${BUILD_DIR:-$repo/build-fuzz}
jobs=${FUZZ_JOBS:-1}

case $seconds in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

if [ ! -f "$build/build.ninja" ]; then
	# -fsanitize=fuzzer-no-link gives the library coverage feedback; the
	# targets themselves link libFuzzer (fuzz/meson.build). Clang does not
	# know some of GCC's warning options the project passes.
	CC=${CC:-clang} meson setup "$build" "$repo" -Dfuzzing=true -Dwerror_dev=true \
		-Db_sanitize=address,undefined -Db_lundef=false \
		"-Dc_args=['-Wno-unknown-warning-option','-fsanitize=fuzzer-no-link']" \
		>"$build.setup.log" 2>&1 || {
		echo "meson setup failed; see $build.setup.log" >&2
		exit 2
	}
	rm -f "$build.setup.log"
fi

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=""
	for src in "$here"/fuzz_*.c; do
		targets="$targets $(basename "$src" .c)"
	done
fi

# shellcheck disable=SC2086
ninja -C "$build" $(for t in $targets; do printf 'fuzz/%s ' "$t"; done) >"$build/fuzz-build.log" 2>&1 || {
	echo "build failed; see $build/fuzz-build.log" >&2
	tail -20 "$build/fuzz-build.log" >&2
	exit 2
}

work=${FUZZ_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/trs-fuzz.XXXXXX")}
status=0
for t in $targets; do
	name=${t#fuzz_}
	corpus=$work/corpus/$name
	artifacts=$work/artifacts/$t
	log=$work/$t.log
	mkdir -p "$corpus" "$artifacts"
	[ -d "$here/corpus/$name" ] && cp -R "$here/corpus/$name/." "$corpus/"
	dict=""
	[ -f "$here/$name.dict" ] && dict="-dict=$here/$name.dict"
	parallel=""
	# With -jobs, libFuzzer writes fuzz-N.log into the current directory.
	[ "$jobs" -gt 1 ] && parallel="-jobs=$jobs -workers=$jobs"
	# shellcheck disable=SC2086
	(cd "$work" && "$build/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
		-timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" \
		$parallel $dict "$corpus" >"$log" 2>&1)
	rc=$?
	crashes=$(find "$artifacts" -type f | wc -l)
	if [ $rc -eq 0 ] && [ "$crashes" -eq 0 ]; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
		echo "PASS $t (${seconds}s, ${execs:-?} runs)"
	else
		echo "FAIL $t (exit $rc; inputs in $artifacts; log $log)"
		grep -m2 -E 'ERROR: |SUMMARY: |deadly signal' "$log" | sed "s/^/    $t: /" >&2
		status=1
	fi
done

if [ $status -eq 0 ] && [ -z "${FUZZ_WORK:-}" ]; then
	rm -rf "$work"
fi
exit $status
