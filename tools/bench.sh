#!/usr/bin/env bash
# The lps benchmark in one command: builds lps and lps-loadgen, starts lps on a free port with a
# fresh data dir, runs the load generator in single mode and then in bulk mode, prints both
# summaries and stops lps. Not part of the default test set. See docs/benchmarks.md.
#
#   tools/bench.sh [count] [extra lps flags...]
#
# Environment:
#   BUILD_DIR=build        CMake build dir (use your own when sharing a checkout)
#   LPS_BIN=path           the lps binary to run (default $BUILD_DIR/lps), e.g. an older build
#                          for an A/B comparison in one session
#   BENCH_FSYNC=0          start lps with --store-fsync=false (default: fsync on)
#   BENCH_TIMEOUT=600      per-run limit in seconds (the load generator's --timeout-seconds)
#   LOADGEN_FLAGS="..."    extra load generator flags for both runs (e.g. --concurrency=128)
#   BENCH_MODES="single bulk"  which runs, in order
#
# Exit code: 0 when every run passed its checks and lps stopped cleanly; 1 otherwise.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
count=${1:-100000}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $count =~ ^[0-9]+$ ]]; then
  echo "usage: tools/bench.sh [count] [extra lps flags...]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build}
lps_bin=${LPS_BIN:-$build_dir/lps}
timeout_s=${BENCH_TIMEOUT:-600}
modes=${BENCH_MODES:-single bulk}
read -r -a loadgen_extra <<<"${LOADGEN_FLAGS:-}"

echo "== building lps and lps-loadgen in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-bench.XXXXXX")
lps_pid=""

stop_lps() {
  local pid=$lps_pid
  lps_pid=""
  stop_pid "$pid"
}

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  stop_lps || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lps_flags=(--http-port=0 "--data-dir=$work/data" --log-level=warn)
if [[ ${BENCH_FSYNC:-1} == 0 ]]; then
  lps_flags+=(--store-fsync=false)
fi
lps_flags+=("$@")

start_lps "$lps_bin" "${lps_flags[@]}" || exit 1

echo "machine: nproc $(nproc), memory $(free -m | awk '/^Mem:/ {print $2}') MiB," \
  "fsync ${BENCH_FSYNC:-1}, count $count"
failed=0
for mode in $modes; do
  echo
  echo "== $mode mode: $count requests"
  rc=0
  "$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" "--count=$count" "--mode=$mode" \
    "--pid=$lps_pid" "--timeout-seconds=$timeout_s" "${loadgen_extra[@]}" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench: $mode run failed (exit $rc)" >&2
    failed=1
  fi
done

rc=0
stop_lps || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "bench: lps exited with status $rc; its stderr:" >&2
  tail -n 20 "$work/lps.err" >&2
  failed=1
fi
exit "$failed"
