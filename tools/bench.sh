#!/usr/bin/env bash
# The lps benchmark in one command: builds lps and lps-loadgen, starts lps on a free port with a
# fresh data dir, runs the load generator in single mode and then in bulk mode, prints both
# summaries and stops lps; with BENCH_BACKENDS="sqlite postgres" it does so on each store in
# turn (PostgreSQL: a throw-away PostgreSQL 15 server of tools/pg.sh, fsync on, made for this
# run and deleted after it) and ends with a table of both. Not part of the default test set.
# See docs/benchmarks.md.
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
#   BENCH_BACKENDS=sqlite  the stores, in order: sqlite, postgres or both ("sqlite postgres");
#                          each gets a fresh lps (and postgres a fresh server); with postgres
#                          the runs also print postgres_cpu_s, the CPU of that server's
#                          processes only (postmaster, its background processes, the
#                          connections of lps), from /proc
#   BENCH_NICE=-15         run lps, the load generator and the PostgreSQL server at this
#                          niceness (as root; every thread), e.g. beside builds at nice 19
#   BENCH_AUTOGROUP=1      with BENCH_NICE: each in a session of its own whose autogroup
#                          gets that niceness (tools/bench_lib.sh; takes the CPU from
#                          other sessions)
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
backends=${BENCH_BACKENDS:-sqlite}
read -r -a loadgen_extra <<<"${LOADGEN_FLAGS:-}"

echo "== building lps and lps-loadgen in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-bench.XXXXXX")
# The PostgreSQL server runs as the postgres user (as root), which must reach its directory.
chmod 711 "$work"
lps_pid=""
pg_dir=""

stop_lps() {
  local pid=$lps_pid
  lps_pid=""
  stop_pid "$pid"
}

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  stop_lps || true
  [[ -z $pg_dir ]] || tools/pg.sh destroy "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh PostgreSQL 15 server (fsync and synchronous_commit on, the server's defaults) at the
# benchmark's niceness; sets pg_dir and pg_url.
start_postgres() {
  pg_dir=$work/pg
  pg_url=$(tools/pg.sh start "$pg_dir")
  local postmaster
  postmaster=$(pg_postmaster "$pg_dir/data")
  # shellcheck disable=SC2046  # one PID per word
  renice_threads "$postmaster" $(ps --ppid "$postmaster" -o pid=)
}

# The value of `key` in a load generator summary (first word after the key).
summary_value() {
  awk -v key="$2" '$1 == key {print $2; exit}' "$1"
}

# The number in "(N us/request)" of a summary line.
summary_per_request() {
  sed -n "s/^$2 .*(\\([0-9]*\\) us\\/request)/\\1/p" "$1"
}

failed=0
table=()
for backend in $backends; do
  lps_flags=(--http-port=0 "--data-dir=$work/data-$backend" --log-level=warn)
  if [[ ${BENCH_FSYNC:-1} == 0 ]]; then
    lps_flags+=(--store-fsync=false)
  fi
  postmaster=""
  case $backend in
  sqlite) ;;
  postgres)
    start_postgres
    postmaster=$(pg_postmaster "$pg_dir/data")
    lps_flags+=(--store-backend=postgres "--postgres-url=$pg_url")
    echo "postgres: $(psql "$pg_url" -qAtc "SELECT 'server ' || current_setting('server_version')
      || ', fsync ' || current_setting('fsync') || ', synchronous_commit '
      || current_setting('synchronous_commit')")"
    ;;
  *)
    echo "bench: unknown backend $backend (sqlite or postgres)" >&2
    exit 2
    ;;
  esac
  lps_flags+=("$@")
  start_lps "${bench_nice[@]}" "$lps_bin" "${lps_flags[@]}" || exit 1

  echo "machine: nproc $(nproc), memory $(free -m | awk '/^Mem:/ {print $2}') MiB," \
    "fsync ${BENCH_FSYNC:-1}, count $count, backend $backend, lps $lps_bin"
  for mode in $modes; do
    echo
    echo "== $backend, $mode mode: $count requests (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
    pg_before=""
    [[ -z $postmaster ]] || pg_before=$(pg_cpu_seconds "$postmaster")
    rc=0
    "${bench_nice[@]}" "$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" "--count=$count" \
      "--mode=$mode" "--pid=$lps_pid" "--timeout-seconds=$timeout_s" "${loadgen_extra[@]}" \
      | tee "$work/run.out" || rc=$?
    pg_us="n/a"
    if [[ -n $postmaster ]]; then
      pg_used=$(awk -v a="$pg_before" -v b="$(pg_cpu_seconds "$postmaster")" 'BEGIN {printf "%.2f", b - a}')
      pg_us=$(awk -v s="$pg_used" -v n="$count" 'BEGIN {printf "%.0f", s * 1e6 / n}')
      printf '%-19s %s\n' postgres_cpu_s "$pg_used ($pg_us us/request)"
    fi
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ $rc -ne 0 ]]; then
      echo "bench: $backend $mode run failed (exit $rc)" >&2
      failed=1
    fi
    table+=("$(printf '| %s | %s | %s | %s / %s | %s | %s | %s | %s |' "$backend" "$mode" \
      "$(summary_value "$work/run.out" completed_per_s)" \
      "$(summary_value "$work/run.out" e2e_p50_ms)" "$(summary_value "$work/run.out" e2e_p99_ms)" \
      "$(summary_per_request "$work/run.out" server_cpu_s)" "$pg_us" \
      "$(summary_per_request "$work/run.out" loadgen_cpu_s)" \
      "$(summary_value "$work/run.out" result)")")
  done

  rc=0
  stop_lps || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "bench: lps exited with status $rc; its stderr:" >&2
    tail -n 20 "$work/lps.err" >&2
    failed=1
  fi
  if [[ -n $pg_dir ]]; then
    tools/pg.sh destroy "$pg_dir" >/dev/null
    pg_dir=""
  fi
done

echo
# The load generator shares the cores: its CPU counts against the throughput too.
echo "| store | mode | completed/s | e2e p50 / p99 ms | lps CPU us/request | PostgreSQL CPU us/request | load generator CPU us/request | result |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
exit "$failed"
