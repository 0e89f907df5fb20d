#!/usr/bin/env bash
# What an idle lps costs: starts lps on a free port with a fresh data dir (SQLite, defaults),
# optionally sends some load first, waits, then samples the CPU time of each of its threads
# over a window with no load and prints it. A benchmark, not a test. See docs/benchmarks.md,
# "Idle CPU".
#
#   tools/idle_cpu.sh [seconds] [extra lps flags...]     (default 60 seconds)
#
# Environment:
#   BUILD_DIR=build        CMake build dir (lps and lps-loadgen are built there)
#   LPS_BIN=path           the lps binary to run (default $BUILD_DIR/lps), e.g. an older build
#   IDLE_LOAD_COUNT=0      requests sent (lps-loadgen, single mode) before the idle window,
#                          so that the window shows an lps that has worked, not a fresh one
#   IDLE_SETTLE_SECONDS=5  wait between start (or the load's end) and the window
#   BENCH_NICE=-15         as root: lps (every thread) at this niceness
#   IDLE_PID=pid           measure this running process instead of starting lps (nothing is
#                          built, started or stopped)
#
# Figures come from /proc/PID/task/*/schedstat (time on a CPU, in ns) and the threads'
# context switches (/proc/PID/task/*/status), read at the window's start and end. Output:
# `key value` lines, then one line per thread: name, CPU ms in the window, wake-ups per s.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
seconds=${1:-60}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $seconds =~ ^[0-9]+$ ]] || [[ $seconds -eq 0 ]]; then
  echo "usage: tools/idle_cpu.sh [seconds] [extra lps flags...]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build}
lps_bin=${LPS_BIN:-$build_dir/lps}
load_count=${IDLE_LOAD_COUNT:-0}
settle=${IDLE_SETTLE_SECONDS:-5}

# One line per thread of $1: tid name cpu_ns context_switches.
snapshot() {
  local pid=$1 task name ns switches
  for task in /proc/"$pid"/task/*; do
    name=$(tr ' ' '_' <"$task/comm" 2>/dev/null) || continue
    ns=$(cut -d' ' -f1 "$task/schedstat" 2>/dev/null) || continue
    switches=$(awk '/ctxt_switches/ {n += $2} END {print n + 0}' "$task/status" 2>/dev/null) || continue
    echo "${task##*/} $name $ns $switches"
  done
}

# Prints the window's figures from two snapshots (threads that came or went count from 0).
report() {
  local before=$1 after=$2
  awk -v seconds="$seconds" '
    FNR == NR { ns0[$1] = $3; sw0[$1] = $4; next }
    {
      ns = $3 - ns0[$1]; sw = $4 - sw0[$1]
      total_ns += ns; total_sw += sw
      lines[++n] = sprintf("thread %-16s %9.2f ms %9.1f wakeups/s", $2, ns / 1e6, sw / seconds)
    }
    END {
      printf "idle_seconds %d\n", seconds
      printf "idle_cpu_s %.4f\n", total_ns / 1e9
      printf "idle_cpu_percent_of_core %.3f\n", 100 * total_ns / 1e9 / seconds
      printf "idle_wakeups_per_s %.1f\n", total_sw / seconds
      for (i = 1; i <= n; ++i) print lines[i]
    }' "$before" "$after"
}

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-idle.XXXXXX")
lps_pid=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local pid=$lps_pid
  lps_pid=""
  stop_pid "$pid" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pid=${IDLE_PID:-}
if [[ -z $pid ]]; then
  echo "== building lps and lps-loadgen in $build_dir" >&2
  cmake -S . -B "$build_dir" -G Ninja >/dev/null
  cmake --build "$build_dir" --target lps lps-loadgen >&2
  start_lps "${bench_nice[@]}" "$lps_bin" --http-port=0 "--data-dir=$work/data" --log-level=warn "$@" || exit 1
  pid=$lps_pid
  if [[ $load_count -gt 0 ]]; then
    echo "== $load_count requests first" >&2
    "$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" "--count=$load_count" \
      --mode=single "--pid=$pid" >"$work/load.out" 2>/dev/null || {
      cat "$work/load.out" >&2
      echo "idle_cpu: the load before the window failed" >&2
      exit 1
    }
  fi
fi
sleep "$settle"
snapshot "$pid" >"$work/before"
sleep "$seconds"
snapshot "$pid" >"$work/after"
kill -0 "$pid" 2>/dev/null || { echo "idle_cpu: process $pid ended during the window" >&2; exit 1; }
echo "lps $lps_bin, pid $pid, load average $(cut -d' ' -f1-3 /proc/loadavg)"
report "$work/before" "$work/after"
