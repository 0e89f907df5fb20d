#!/usr/bin/env bash
# A large backlog and a restart on it, in one command: starts lps with a provider that does
# not answer in the run's time (the built-in mock at 600 s latency, so every request beyond
# the mock's calls in flight stays queued), fills it with `count` bulk requests without
# waiting for results, reports lps's peak RSS, then kills lps (SIGKILL), starts it again on
# the same store and times how long until the queue manager logged its recovery, /healthz
# answers 200 and a new request gets its 202, and lps's CPU until that 200. With BACKLOG_RESTARTS, one such restart per
# binary listed, in turn, on the same backlog (an old build against a new one in one run). Default store: PostgreSQL, on a throw-away PostgreSQL 15 server of tools/pg.sh
# (fsync on) made for the run and deleted after it. A benchmark, not a test; see
# docs/benchmarks.md, "A backlog of 1,000,000 requests".
#
#   tools/backlog_bench.sh [count] [extra lps flags...]     (default 1,000,000)
#
# Environment:
#   BUILD_DIR=build          CMake build dir (lps and lps-loadgen are built there)
#   LPS_BIN=path             the lps binary to run (default $BUILD_DIR/lps)
#   BACKLOG_RESTARTS="a b"   the binaries restarted in turn after the fill (default: LPS_BIN
#                            once). A binary with a newer schema migrates the database at its
#                            first start (timed with it); an older one cannot start after it.
#   BACKLOG_BACKEND=postgres the store: postgres or sqlite
#   BACKLOG_SEED=n           PostgreSQL only: fill only n requests through lps, then copy
#                            their rows in SQL (new queue ids, without texts) up to `count`
#                            and vacuum (for a machine too loaded for a real fill; a quiet
#                            one fills 1,000,000 through lps in about 90 s). Unset (default):
#                            all `count` go through lps's bulk API.
#   BENCH_TIMEOUT=3600       the load generator's --timeout-seconds
#   BENCH_NICE=-15           as root: lps, the load generator and PostgreSQL at this niceness
#   BENCH_AUTOGROUP=1        with BENCH_NICE: their sessions' autogroups too (bench_lib.sh)
#
# Exit code: 0 when every request was accepted and lps served again after the restart.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
count=${1:-1000000}
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ $count =~ ^[0-9]+$ ]]; then
  echo "usage: tools/backlog_bench.sh [count] [extra lps flags...]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build}
lps_bin=${LPS_BIN:-$build_dir/lps}
backend=${BACKLOG_BACKEND:-postgres}
seed=${BACKLOG_SEED:-$count}
if ! [[ $seed =~ ^[0-9]+$ ]] || ((seed < 1 || seed > count)); then
  echo "backlog_bench: BACKLOG_SEED must be a number from 1 to count" >&2
  exit 2
fi
if ((seed < count)) && [[ $backend != postgres ]]; then
  echo "backlog_bench: BACKLOG_SEED needs BACKLOG_BACKEND=postgres" >&2
  exit 2
fi
timeout_s=${BENCH_TIMEOUT:-3600}

echo "== building lps and lps-loadgen in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-backlog.XXXXXX")
# The PostgreSQL server runs as the postgres user (as root), which must reach its directory.
chmod 711 "$work"
lps_pid=""
pg_dir=""
# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local pid=$lps_pid
  lps_pid=""
  stop_pid "$pid" || true
  [[ -z $pg_dir ]] || tools/pg.sh destroy "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Nothing completes during the run: the mock answers after 600 s; the queue may hold them all.
lps_flags=(--http-port=0 "--data-dir=$work/data" --mock-latency-ms=600000
  "--queue-max-size=$((count + count / 10 + 1000))")
case $backend in
sqlite) ;;
postgres)
  pg_dir=$work/pg
  pg_url=$(tools/pg.sh start "$pg_dir")
  postmaster=$(pg_postmaster "$pg_dir/data")
  # shellcheck disable=SC2046  # one PID per word
  renice_threads "$postmaster" $(ps --ppid "$postmaster" -o pid=)
  lps_flags+=(--store-backend=postgres "--postgres-url=$pg_url")
  ;;
*)
  echo "backlog_bench: unknown backend $backend (sqlite or postgres)" >&2
  exit 2
  ;;
esac
lps_flags+=("$@")

# Seconds since the epoch, with milliseconds.
now() {
  date +%s.%3N
}

# VmHWM and VmRSS of lps in MiB.
rss_figures() {
  awk '/^VmHWM/ {hwm = $2} /^VmRSS/ {rss = $2} END {printf "peak %.1f MiB, now %.1f MiB\n", hwm / 1024, rss / 1024}' \
    "/proc/$1/status"
}

# One comparison request; prints the HTTP status.
submit_one() {
  curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$port/api/v1/comparison" \
    -H 'Content-Type: application/json' \
    -d '{"user_prompt": "Which essay is better?\n\n**Essay A (ID: a1):** one\n\n**Essay B (ID: b1):** two",
         "metadata": {"essay_a_id": "a1", "essay_b_id": "b1", "bos_batch_id": "backlog-bench"}}' ||
    true
}

# Copies the rows lps stored (in turn, as often as needed) until `n` more are queued: new
# queue ids (the original's with a suffix; the payload still names the original, which only
# a dispatched copy would show), the same order columns, no texts (the recovery scan reads
# neither payload nor texts). Then VACUUM, as autovacuum would have done during a long fill,
# so the recovery scan meets a visibility map as after a real one.
copy_rows() {
  local n=$1 columns copies started
  started=$(now)
  columns=$(psql "$pg_url" -qAtc "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY
    ordinal_position) FROM information_schema.columns WHERE table_name = 'requests'
    AND column_name NOT IN ('queue_id', 'texts', 'seq')")
  copies=$(((n + seed - 1) / seed))
  echo "== copying the $seed stored rows in SQL up to $n more (without texts)"
  psql "$pg_url" -qv ON_ERROR_STOP=1 -c "INSERT INTO requests (queue_id, $columns)
    SELECT queue_id || '-c' || g, $columns FROM (SELECT * FROM requests ORDER BY seq) AS r,
    generate_series(1, $copies) AS g ORDER BY g, r.seq LIMIT $n" -c "VACUUM (ANALYZE) requests"
  awk -v s="$started" -v e="$(now)" 'BEGIN {printf "copy_and_vacuum_s %.1f\n", e - s}'
}

echo "machine: nproc $(nproc), memory $(free -m | awk '/^Mem:/ {print $2}') MiB, backend $backend," \
  "count $count, lps $lps_bin, load average $(cut -d' ' -f1-3 /proc/loadavg)"
start_lps "${bench_nice[@]}" "$lps_bin" "${lps_flags[@]}" --log-level=warn || exit 1
echo "== filling: $seed requests through lps, bulk, not waiting for results"
"${bench_nice[@]}" "$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" "--count=$seed" \
  --mode=bulk --wait=none "--pid=$lps_pid" "--timeout-seconds=$timeout_s" |
  grep -E '^(accepted|not_accepted|refused|elapsed_s|accepted_per_s|server_[a-z_]+|loadgen_cpu_s|result) '
echo "lps rss after the fill: $(rss_figures "$lps_pid"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if ((seed < count)); then
  copy_rows "$((count - seed))"
fi
if [[ $backend == postgres ]]; then
  echo "postgres: database size $(psql "$pg_url" -qAtc "SELECT pg_size_pretty(pg_database_size('lps'))")"
fi

# CPU seconds (user + system) a process used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# A log line's local time (spdlog's "%Y-%m-%dT%H:%M:%S.%e") as seconds since the epoch.
log_time() {
  date -d "$(cut -c1-23 <<<"$1")" +%s.%3N
}

# SIGKILL of the running lps, then `binary` started on the same store; prints the times.
restart_with() {
  local binary=$1 started healthy="" accepted="" recovered cpu=""
  echo "== SIGKILL, then $binary started on the same store"
  kill -KILL "$lps_pid"
  wait "$lps_pid" 2>/dev/null || true
  lps_pid=""
  started=$(now)
  # Info: the queue manager's "recovered" line marks the index loaded.
  "${bench_nice[@]}" "$binary" "${lps_flags[@]}" --log-level=info >"$work/lps.out" \
    2>"$work/lps.err" &
  lps_pid=$!
  for _ in $(seq 1 6000); do
    if ! kill -0 "$lps_pid" 2>/dev/null; then
      echo "backlog_bench: lps exited during the restart:" >&2
      tail -n 20 "$work/lps.err" >&2
      exit 1
    fi
    port=$(sed -n 's|^lps starting on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$work/lps.out")
    if [[ -n $port ]]; then
      if [[ -z $healthy ]] &&
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz" || true) == 200 ]]; then
        healthy=$(now)
        cpu=$(cpu_seconds "$lps_pid")
      fi
      if [[ -n $healthy ]] && [[ $(submit_one) == 202 ]]; then
        accepted=$(now)
        break
      fi
    fi
    sleep 0.05
  done
  if [[ -z $accepted ]]; then
    echo "backlog_bench: lps did not serve within 300 s of its restart" >&2
    exit 1
  fi
  recovered=$(grep -m1 'queue-manager recovered' "$work/lps.err" || true)
  awk -v s="$started" -v h="$healthy" -v a="$accepted" \
    -v r="$([[ -n $recovered ]] && log_time "$recovered")" \
    'BEGIN {if (r != "") printf "restart_to_index_loaded_s %.2f\n", r - s
            printf "restart_to_healthz_s %.2f\nrestart_to_first_202_s %.2f\n", h - s, a - s}'
  echo "lps_cpu_to_healthz_s $cpu"
  grep -E 'migrat' "$work/lps.err" | cut -c1-160 || true
  echo "lps rss after the restart: $(rss_figures "$lps_pid"), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

read -r -a restart_bins <<<"${BACKLOG_RESTARTS:-$lps_bin}"
for binary in "${restart_bins[@]}"; do
  restart_with "$binary"
done
rc=0
stop_pid "$lps_pid" || rc=$?
lps_pid=""
if [[ $backend == postgres ]]; then
  # How much of the restart is the database's part: the plan of the recovery scan's
  # statement (the columns and order of pg_recovery_scan_sql in runtime/pg_store.cpp), run
  # alone; with schema version 6 an index-only scan, whose heap fetches say how much of the
  # table the visibility map still sent it to.
  echo "== the recovery scan alone (EXPLAIN ANALYZE, lps stopped)"
  psql "$pg_url" -qAtc "EXPLAIN (ANALYZE, BUFFERS) SELECT queue_id, priority,
    (extract(epoch FROM queued_at) * 1000)::bigint, size_bytes, attempts, provider
    FROM requests ORDER BY priority DESC, queued_at, seq" |
    grep -E 'Sort|Scan|Heap Fetches|Buffers|Execution Time'
  psql "$pg_url" -qAtc "SELECT 'requests: last autovacuum ' || coalesce(last_autovacuum::text,
    'never') || ', autovacuums ' || autovacuum_count || ', updates ' || n_tup_upd || ' (HOT '
    || n_tup_hot_upd || ')' FROM pg_stat_user_tables WHERE relname = 'requests'"
fi
exit "$rc"
