#!/usr/bin/env bash
# The soak benchmark: lps under a steady open-loop load with provider faults and callbacks for
# a long time, sampling its resident memory, open files and threads every minute, then idle for
# a while. After the warm-up the figures must stay within 10 % of each other. Not part of the
# default test set. See docs/benchmarks.md.
#
#   tools/soak.sh [minutes] [extra lps flags...]      (default 60 minutes)
#
# Environment:
#   BUILD_DIR=build            CMake build dir
#   LPS_BIN=path               the lps binary to run (default $BUILD_DIR/lps)
#   SOAK_RATE=2000             requests started per second (lps-loadgen --rate)
#   SOAK_CONCURRENCY=512       POSTs in flight at most (lps-loadgen --concurrency); raise it
#                              on a busy machine where 202s are slow (rate x accept latency)
#   SOAK_FAULT_RATE=0.05       share of mock provider calls that fail (429, 503, 500: retried)
#   SOAK_WARMUP_MINUTES=5      samples before this are left out of the verdict
#   SOAK_IDLE_MINUTES=2        samples taken after the load ended (idle lps)
#   SOAK_SAMPLE_SECONDS=60     time between samples
#   SOAK_TOLERANCE=0.10        allowed spread (max / min - 1) of each figure after warm-up
#
# Prints one line per sample (minute, phase, RSS MiB, open files, threads, queue depth), the
# load generator's summary and a verdict over the load samples taken after the warm-up (the
# idle samples show what lps keeps once the load is gone; open files differ there because the
# load generator's connections are closed). Exit code: 0 when the load generator passed its
# exactly-once checks and every figure stayed within the tolerance; 1 otherwise.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
minutes=${1:-60}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $minutes =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: tools/soak.sh [minutes] [extra lps flags...]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build}
lps_bin=${LPS_BIN:-$build_dir/lps}
rate=${SOAK_RATE:-2000}
fault_rate=${SOAK_FAULT_RATE:-0.05}
warmup=${SOAK_WARMUP_MINUTES:-5}
idle=${SOAK_IDLE_MINUTES:-2}
sample_s=${SOAK_SAMPLE_SECONDS:-60}
tolerance=${SOAK_TOLERANCE:-0.10}
concurrency=${SOAK_CONCURRENCY:-512}

echo "== building lps and lps-loadgen in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-soak.XXXXXX")
lps_pid=""
sampler_pid=""

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null || true
  stop_pid "$lps_pid" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lps_flags=(--http-port=0 "--data-dir=$work/data" --log-level=warn "--mock-error-rate=$fault_rate"
  "$@")
start_lps "$lps_bin" "${lps_flags[@]}" || exit 1

# One sample: seconds since start, phase, RSS in MiB, open files, threads, queue depth.
sample() {
  local rss fds threads depth
  rss=$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$lps_pid/status")
  threads=$(awk '/^Threads:/ {print $2}' "/proc/$lps_pid/status")
  fds=$(find "/proc/$lps_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  depth=$(curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
    awk '/^llm_provider_queue_depth\{status="total"\}/ {print $2}')
  local phase=load
  [[ -e $work/load_done ]] && phase=idle
  echo "$1 $phase $rss $fds $threads ${depth:-?}"
}

start=$(date +%s)
echo "machine: nproc $(nproc), rate $rate/s for $minutes min, faults $fault_rate," \
  "then idle $idle min; sample every $sample_s s"
printf '%8s %6s %9s %6s %8s %12s\n' minute phase rss_mib fds threads queue_depth
(
  while kill -0 "$lps_pid" 2>/dev/null; do
    now=$(date +%s)
    line=$(sample $((now - start)))
    echo "$line" >>"$work/samples"
    awk '{printf "%8.1f %6s %9s %6s %8s %12s\n", $1 / 60, $2, $3, $4, $5, $6}' <<<"$line"
    # The idle phase lasts SOAK_IDLE_MINUTES from the end of the load, however long the load
    # took (a load generator that falls behind its rate runs past the planned minutes).
    if [[ -e $work/load_done ]] &&
      [[ $((now - $(stat -c %Y "$work/load_done"))) -ge $((idle * 60)) ]]; then
      break
    fi
    sleep "$sample_s"
  done
) &
sampler_pid=$!

loadgen_rc=0
"$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" "--count=$((rate * minutes * 60))" \
  "--rate=$rate" "--concurrency=$concurrency" --wait=callback "--pid=$lps_pid" \
  "--timeout-seconds=$((minutes * 60 + 600))" >"$work/loadgen.out" 2>"$work/loadgen.err" ||
  loadgen_rc=$?
touch "$work/load_done"
wait "$sampler_pid" || true
sampler_pid=""

echo
echo "== load generator (exit $loadgen_rc)"
cat "$work/loadgen.out"
[[ $loadgen_rc -eq 0 ]] || tail -n 5 "$work/loadgen.err"

# The spread of each figure over the load samples taken after the warm-up.
verdict=$(awk -v warm=$((warmup * 60)) -v tol="$tolerance" '
  $1 >= warm && $2 == "load" {
    n++
    for (i = 3; i <= 5; i++) {
      if (!(i in lo) || $i < lo[i]) lo[i] = $i
      if (!(i in hi) || $i > hi[i]) hi[i] = $i
    }
  }
  END {
    if (n < 2) { print "too few samples after the warm-up"; exit 1 }
    split("rss_mib fds threads", name, " ")
    bad = 0
    for (i = 3; i <= 5; i++) {
      spread = lo[i] > 0 ? hi[i] / lo[i] - 1 : 0
      over = spread > tol
      printf "%s %s..%s (spread %.1f %%)%s\n", name[i - 2], lo[i], hi[i], spread * 100,
        (over ? " OVER" : "")
      if (over) bad = 1
    }
    exit bad
  }' "$work/samples") && stable=1 || stable=0
echo
echo "== after the first $warmup min (tolerance $tolerance)"
echo "$verdict"
if [[ $loadgen_rc -ne 0 || $stable -ne 1 ]]; then
  echo "soak: FAILED" >&2
  exit 1
fi
echo "soak: passed"
