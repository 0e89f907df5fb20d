#!/usr/bin/env bash
# Gateway overhead in one command: the same OpenAI chat/completions load sent (a) by the load
# generator straight to lps-mock-provider and (b) through lps (submit -> lps -> OpenAI
# provider actor -> mock -> result event callback), side by side. Not part of the test
# suite. See docs/benchmarks.md, section "Gateway overhead".
#
#   tools/gateway_bench.sh [count] [concurrency]        (defaults 20000 and 64)
#
# Per round: the direct run (lps-loadgen --mode=direct: the chat/completions body lps would
# send, straight to the mock); then for each lps mode: a fresh lps (--default-llm-provider=
# openai, --openai-base-url=<mock>/v1, fresh data dir), the load generator in single mode
# with callbacks (one POST per request, --concurrency POSTs in flight), lps's /metrics read,
# lps stopped. One mock process serves every run.
#
# By default the load is closed-loop: each answer frees a slot for the next call or POST, so
# the faster path is also offered more load. With RATE set, both the direct run and every lps
# run offer the same open-loop load instead: RATE calls (direct) or POSTs (lps) a second on a
# fixed schedule (lps-loadgen --rate), and the concurrency argument only caps how many are in
# flight. A run that could not keep up shows it as rate_late > 0 in the late-starts line.
#
# The mock runs with --rate-limit-requests=0 --rate-limit-tokens=0: it sends no
# x-ratelimit-* headers. lps obeys such headers (once a provider says 0 left it holds every
# call until the window resets), and the mock's default account limit (10,000 requests and
# 2,000,000 prompt tokens a minute, ~1,200 of these calls) would measure that limit, not the
# gateway.
#
# Environment:
#   BUILD_DIR=build-bench   CMake build dir (configured Release)
#   ESSAY_BYTES=3000        the load generator's --essay-bytes (same for both paths)
#   ROUNDS=2                rounds; each round runs direct, then every mode in MODES
#   RATE=                   calls / POSTs per second for every run (the load generator's
#                           --rate); empty or 0: closed loop, as many as --concurrency allows
#   MODES="per_request serial_bundle"   lps QUEUE_PROCESSING_MODE values to run; "builtin"
#                           adds a run of lps with its built-in mock provider (per_request,
#                           no provider HTTP call) to price the HTTP provider path
#   BENCH_FSYNC=1           0: start lps with --store-fsync=false
#   MOCK_IO_THREADS=1       the mock's --io-threads
#   BENCH_TIMEOUT=120       per-run limit in seconds (the load generator's --timeout-seconds)
#   LPS_BIN=path           the lps binary to run (default $BUILD_DIR/lps), e.g. an older
#                           build for an A/B comparison in one session
#   LPS_FLAGS="..."         extra lps flags (e.g. --openai-max-concurrent-calls=128)
#   KEEP_DIR=path           copy every raw load generator output and /metrics dump there
#
# Exit code: 0 when every run passed its checks (all calls 200 with a verdict, every request
# one successful result) and lps stopped cleanly; 1 otherwise; 2 for bad arguments.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
count=${1:-20000}
concurrency=${2:-64}
if ! [[ $count =~ ^[0-9]+$ && $concurrency =~ ^[0-9]+$ ]] || [[ $# -gt 2 ]]; then
  echo "usage: tools/gateway_bench.sh [count] [concurrency]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build-bench}
lps_bin=${LPS_BIN:-$build_dir/lps}
essay_bytes=${ESSAY_BYTES:-3000}
rate=${RATE:-0}
if ! [[ $rate =~ ^(0|[1-9][0-9]{0,5}|1000000)$ ]]; then
  echo "gateway_bench: RATE must be a whole number of calls per second in 0..1000000," \
    "got '$rate'" >&2
  exit 2
fi
rounds=${ROUNDS:-2}
modes=${MODES:-per_request serial_bundle}
timeout_s=${BENCH_TIMEOUT:-120}
read -r -a lps_extra <<<"${LPS_FLAGS:-}"

echo "== building lps, lps-loadgen and lps-mock-provider in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen lps-mock-provider >&2

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-gateway-bench.XXXXXX")
mock_pid=""
lps_pid=""


# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local pid
  pid=$lps_pid
  lps_pid=""
  stop_pid "$pid" || true
  pid=$mock_pid
  mock_pid=""
  stop_pid "$pid" || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# utime + stime of a process, in clock ticks.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# The value of `key` in a load generator summary (first word only).
val() {
  awk -v k="$2" '$1 == k { print $2; exit }' "$1"
}

# Sum of every series of a Prometheus metric (all label sets) in a /metrics dump.
metric_sum() {
  awk -v m="$2" 'index($0, m) == 1 && (substr($0, length(m) + 1, 1) == "{" || substr($0, length(m) + 1, 1) == " ") { s += $NF } END { printf "%.6f", s + 0 }' "$1"
}

# Busy ticks of the whole machine (user nice system irq softirq steal).
busy_ticks() {
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# Appends "others_pct P": the share of the machine's cores that processes other than ours
# (mock, lps, load generator) used during the run (and steal): contention.
others_line() {
  local out=$1 busy=$2 ours=$3 elapsed lg
  elapsed=$(val "$out" elapsed_s)
  lg=$(val "$out" loadgen_cpu_s)
  echo "others_pct $(calc %.0f "($busy - $ours) / $clk_tck - $lg < 0 ? 0 : \
    (($busy - $ours) / $clk_tck - $lg) * 100 / ($elapsed * $ncpu)")" >>"$out"
}

# Zeroes the mock's call counters before a run.
reset_mock() {
  curl -s -X POST -o /dev/null "http://127.0.0.1:$mock_port/_mock/reset"
}

calc() {
  awk "BEGIN { printf \"$1\", $2 }"
}

mock_flags=(--port=0 --api-key=test-key "--io-threads=${MOCK_IO_THREADS:-1}"
  --rate-limit-requests=0 --rate-limit-tokens=0)
echo "== starting: $build_dir/lps-mock-provider ${mock_flags[*]}" >&2
"$build_dir/lps-mock-provider" "${mock_flags[@]}" >"$work/mock.out" 2>"$work/mock.err" &
mock_pid=$!
mock_port=$(wait_port "mock provider" "$work/mock.out" "$mock_pid")
clk_tck=$(getconf CLK_TCK)
ncpu=$(nproc)

failed=0

run_direct() {
  local out=$1 before after busy
  reset_mock
  before=$(cpu_ticks "$mock_pid")
  busy=$(busy_ticks)
  local rc=0
  "$build_dir/lps-loadgen" --mode=direct "--url=http://127.0.0.1:$mock_port/v1" \
    "--count=$count" "--concurrency=$concurrency" "--rate=$rate" "--essay-bytes=$essay_bytes" \
    "--pid=$mock_pid" "--timeout-seconds=$timeout_s" >"$out" 2>"$out.err" || rc=$?
  after=$(cpu_ticks "$mock_pid")
  busy=$(($(busy_ticks) - busy))
  echo "mock_cpu_us_per_call $(calc %.0f "($after - $before) * 1e6 / $clk_tck / $count")" >>"$out"
  others_line "$out" "$busy" "$((after - before))"
  if [[ $rc -ne 0 ]]; then
    echo "gateway_bench: direct run failed (exit $rc)" >&2
    failed=1
  fi
}

run_lps() {
  local mode=$1 out=$2 data="$work/data-$RANDOM$RANDOM" before after rc=0
  reset_mock
  local flags=(--http-port=0 "--data-dir=$data" --log-level=warn)
  if [[ $mode == builtin ]]; then
    flags+=(--default-llm-provider=mock --queue-processing-mode=per_request)
  else
    flags+=(--default-llm-provider=openai "--openai-base-url=http://127.0.0.1:$mock_port/v1"
      "--queue-processing-mode=$mode")
  fi
  [[ ${BENCH_FSYNC:-1} == 0 ]] && flags+=(--store-fsync=false)
  flags+=("${lps_extra[@]}")
  echo "== $mode: OPENAI_API_KEY=test-key $lps_bin ${flags[*]}" >&2
  OPENAI_API_KEY=test-key "$lps_bin" "${flags[@]}" >"$work/lps.out" 2>"$work/lps.err" &
  lps_pid=$!
  local port
  port=$(wait_port lps "$work/lps.out" "$lps_pid")
  local lps_before lps_after busy
  before=$(cpu_ticks "$mock_pid")
  lps_before=$(cpu_ticks "$lps_pid")
  busy=$(busy_ticks)
  "$build_dir/lps-loadgen" "--url=http://127.0.0.1:$port" --mode=single "--count=$count" \
    "--concurrency=$concurrency" "--rate=$rate" "--essay-bytes=$essay_bytes" "--pid=$lps_pid" \
    "--timeout-seconds=$timeout_s" >"$out" 2>"$out.err" || rc=$?
  after=$(cpu_ticks "$mock_pid")
  lps_after=$(cpu_ticks "$lps_pid")
  busy=$(($(busy_ticks) - busy))
  echo "mock_cpu_us_per_call $(calc %.0f "($after - $before) * 1e6 / $clk_tck / $count")" >>"$out"
  others_line "$out" "$busy" "$((after - before + lps_after - lps_before))"
  curl -s "http://127.0.0.1:$port/metrics" >"$out.metrics" || true
  local pid=$lps_pid stop_rc=0
  lps_pid=""
  stop_pid "$pid" || stop_rc=$?
  local successes
  successes=$(sed -n 's/^completed  *[0-9]* (success \([0-9]*\),.*/\1/p' "$out")
  if [[ $rc -ne 0 || ${successes:-0} -ne $count ]]; then
    echo "gateway_bench: $mode run failed (exit $rc, successes ${successes:-0} of $count)" >&2
    failed=1
  fi
  if [[ $stop_rc -ne 0 ]]; then
    echo "gateway_bench: lps exited with status $stop_rc; its stderr:" >&2
    tail -n 20 "$work/lps.err" >&2
    failed=1
  fi
  rm -rf "$data"
}

if [[ $rate -gt 0 ]]; then rate_text="$rate/s open loop"; else rate_text="closed loop"; fi
echo "machine: nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg), count $count," \
  "concurrency $concurrency, rate $rate_text, essay bytes $essay_bytes," \
  "fsync ${BENCH_FSYNC:-1}, mock io threads ${MOCK_IO_THREADS:-1}"
for round in $(seq 1 "$rounds"); do
  echo "== round $round: direct ($count calls, concurrency $concurrency, rate $rate_text)" >&2
  run_direct "$work/r$round-direct.txt"
  for mode in $modes; do
    echo "== round $round: through lps, $mode" >&2
    run_lps "$mode" "$work/r$round-$mode.txt"
  done
done

# -- tables --------------------------------------------------------------------------------------

us_per_call() { # the "(N us/request)" figure of a *_cpu_s line
  sed -n "s/^$2 .*(\([0-9]*\) us.*/\1/p" "$1"
}

row() {
  printf '| %-5s | %-19s | %8s | %7s | %7s | %7s | %8s | %9s | %9s | %7s | %7s | %7s | %6s |\n' \
    "$@"
}

echo
echo "Throughput and latency. direct: one chat/completions call, send -> answer read."
echo "Through lps: POST /api/v1/comparison -> result event callback received (end to end)."
echo "added = through lps - direct of the same round. CPU in us per call (user + system)."
echo "others: share of the ${ncpu} cores used by other processes during the run (contention)."
echo
row round run "calls/s" "p50 ms" "p90 ms" "p99 ms" "max ms" "added p50" "added p99" \
  "lps cpu" "mock cpu" "lg cpu" others
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  d="$work/r$round-direct.txt"
  d50=$(val "$d" call_p50_ms)
  d99=$(val "$d" call_p99_ms)
  row "$round" direct "$(val "$d" calls_per_s)" "$d50" "$(val "$d" call_p90_ms)" "$d99" \
    "$(val "$d" call_max_ms)" - - - "$(val "$d" mock_cpu_us_per_call)" \
    "$(us_per_call "$d" loadgen_cpu_s)" "$(val "$d" others_pct)%"
  for mode in $modes; do
    f="$work/r$round-$mode.txt"
    e50=$(val "$f" e2e_p50_ms)
    e99=$(val "$f" e2e_p99_ms)
    tag="lps $mode"
    row "$round" "$tag" "$(val "$f" completed_per_s)" "$e50" "$(val "$f" e2e_p90_ms)" "$e99" \
      "$(val "$f" e2e_max_ms)" "$(calc %+.2f "$e50 - $d50")" "$(calc %+.2f "$e99 - $d99")" \
      "$(us_per_call "$f" server_cpu_s)" "$(val "$f" mock_cpu_us_per_call)" \
      "$(us_per_call "$f" loadgen_cpu_s)" "$(val "$f" others_pct)%"
  done
done

split_row() {
  printf '| %-5s | %-13s | %7s | %8s | %9s | %10s | %9s | %9s | %11s | %11s |\n' "$@"
}

echo
echo "Where the time goes through lps (means in ms, except the event columns)."
echo "  provider: lps's own timing of the call (llm_provider_response_duration_seconds)."
echo "  in lps: intake (request parsed) -> final result built (llm_provider_queue_wait_time_"
echo "    seconds): the durable insert, queue manager, bundler, provider actor and the call."
echo "  queue+store = in lps - provider."
echo "  outside = e2e - in lps: HTTP receive and parse before intake, the final store write"
echo "    and the callback POST to the load generator."
echo "  202 p50: send -> 202 Accepted (includes the durable insert)."
echo "  event provider / event inside: p50/p99 of data.response_time_ms and of completed_at -"
echo "    requested_at of the result events (whole ms)."
echo
split_row round run e2e provider "in lps" "queue+store" outside "202 p50" "ev provider" "ev inside"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$rounds"); do
  for mode in $modes; do
    f="$work/r$round-$mode.txt"
    m="$f.metrics"
    rs=$(metric_sum "$m" llm_provider_response_duration_seconds_sum)
    rc=$(metric_sum "$m" llm_provider_response_duration_seconds_count)
    ws=$(metric_sum "$m" llm_provider_queue_wait_time_seconds_sum)
    wc=$(metric_sum "$m" llm_provider_queue_wait_time_seconds_count)
    provider=$(calc %.2f "($rc > 0 ? $rs * 1000 / $rc : 0)")
    inside=$(calc %.2f "($wc > 0 ? $ws * 1000 / $wc : 0)")
    e2e=$(val "$f" e2e_mean_ms)
    split_row "$round" "$mode" "$e2e" "$provider" "$inside" "$(calc %.2f "$inside - $provider")" \
      "$(calc %.2f "$e2e - $inside")" "$(val "$f" accept_p50_ms)" \
      "$(val "$f" event_provider_p50_ms)/$(val "$f" event_provider_p99_ms)" \
      "$(val "$f" event_inside_p50_ms)/$(val "$f" event_inside_p99_ms)"
  done
done
echo
echo "direct call mean ms per round: $(for r in $(seq 1 "$rounds"); do
  printf '%s ' "$(val "$work/r$r-direct.txt" call_mean_ms)"
done)"
if [[ $rate -gt 0 ]]; then
  # Which runs fell behind the schedule (every slot busy): their load was not the offered one.
  echo "late starts (> 1 ms after due at $rate/s): $(for r in $(seq 1 "$rounds"); do
    for run in direct $modes; do
      f="$work/r$r-$run.txt"
      printf 'r%s %s %s (max %s ms); ' "$r" "$run" "$(val "$f" rate_late)" \
        "$(val "$f" rate_late_max_ms)"
    done
  done)"
fi
echo

if [[ -n ${KEEP_DIR:-} ]]; then
  mkdir -p "$KEEP_DIR"
  cp "$work"/r*.txt* "$KEEP_DIR"/
  echo "raw outputs copied to $KEEP_DIR" >&2
fi
exit "$failed"
