#!/usr/bin/env bash
# lps's gateway path against Portkey's open-source gateway, in one run: the same OpenAI
# chat/completions load (lps-loadgen --mode=direct; streamed with STREAM=1) sent straight to the mock
# provider server, through lps (POST /v1/chat/completions) and through @portkey-ai/gateway,
# both gateways pointed at that same mock. Not part of the test suite. See docs/benchmarks.md,
# "lps against Portkey's gateway".
#
#   tools/gateway_compare.sh [rate_count] [throughput_count]     (defaults 20000 and 20000)
#
# Two loads per round, each against direct, lps and Portkey in turn (interleaved):
#   - open loop at RATE calls a second (default 1,000), rate_count calls: the overhead each
#     gateway adds to the direct call's latency (added p50 / p99);
#   - closed loop at CONCURRENCY calls in flight (default 64), throughput_count calls: calls/s.
# For each run the CPU (user + system) of the mock, of the gateway process (lps, or Portkey's
# node process) and of the load generator, per call.
#
# Portkey is installed here, into tools/portkey/node_modules, by `npm ci` from the pinned
# tools/portkey/package-lock.json (only when this script runs; tools/setup.sh does not), and
# started by tools/portkey/start-loopback.mjs on 127.0.0.1 and a free port. Each call through
# it carries `x-portkey-provider: openai` and `x-portkey-custom-host: <mock>/v1` (Portkey's
# headers for an OpenAI-compatible upstream at a custom base URL); the Bearer key is passed
# on to the mock as the OpenAI key, as Portkey does.
#
# Environment:
#   BUILD_DIR=build        CMake build dir
#   LPS_BIN=path           the lps binary (default $BUILD_DIR/lps)
#   RATE=1000              calls a second of the open-loop load
#   CONCURRENCY=64         calls in flight of the closed-loop load (and the cap of the open one)
#   ROUNDS=1               rounds; each round runs both loads against every target
#   TARGETS="direct lps portkey"   which targets, in this order within a load
#   ESSAY_BYTES=3000       the load generator's --essay-bytes
#   STREAM=0               1: streamed calls (`stream: true` with include_usage, the load
#                          generator's --stream=true) for every target; the table adds the
#                          time to the first chunk (the latency columns are to the end)
#   BENCH_NICE=-15         run the mock, lps, Portkey and the load generator at this niceness
#                          (as root), e.g. beside builds at nice 19
#   BENCH_TIMEOUT=300      per-run limit in seconds
#   LPS_FLAGS="..."        extra lps flags
#
# Exit code: 0 when every run passed (every call answered 200 with a valid verdict) and lps
# stopped cleanly; 1 otherwise; 2 for bad arguments.

set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tools/bench_lib.sh
source tools/bench_lib.sh
rate_count=${1:-20000}
throughput_count=${2:-20000}
if ! [[ $rate_count =~ ^[1-9][0-9]*$ && $throughput_count =~ ^[1-9][0-9]*$ ]] || [[ $# -gt 2 ]]; then
  echo "usage: tools/gateway_compare.sh [rate_count] [throughput_count]" >&2
  exit 2
fi
build_dir=${BUILD_DIR:-build}
lps_bin=${LPS_BIN:-$build_dir/lps}
rate=${RATE:-1000}
concurrency=${CONCURRENCY:-64}
rounds=${ROUNDS:-1}
targets=${TARGETS:-direct lps portkey}
essay_bytes=${ESSAY_BYTES:-3000}
stream=${STREAM:-0}
timeout_s=${BENCH_TIMEOUT:-300}
for n in "$rate" "$concurrency" "$rounds"; do
  if ! [[ $n =~ ^[1-9][0-9]{0,5}$ ]]; then
    echo "gateway_compare: RATE, CONCURRENCY and ROUNDS must be whole numbers ≥ 1, got '$n'" >&2
    exit 2
  fi
done
if [[ $stream != 0 && $stream != 1 ]]; then
  echo "gateway_compare: STREAM must be 0 or 1, got '$stream'" >&2
  exit 2
fi
for target in $targets; do
  case $target in direct | lps | portkey) ;; *)
    echo "gateway_compare: unknown target '$target' (direct, lps, portkey)" >&2
    exit 2
    ;;
  esac
done
read -r -a lps_extra <<<"${LPS_FLAGS:-}"

echo "== building lps, lps-loadgen and lps-mock-provider in $build_dir" >&2
cmake -S . -B "$build_dir" -G Ninja >/dev/null
cmake --build "$build_dir" --target lps lps-loadgen lps-mock-provider >&2

if [[ " $targets " == *" portkey "* ]]; then
  echo "== installing Portkey's gateway (npm ci in tools/portkey)" >&2
  (cd tools/portkey && npm ci --no-audit --no-fund >&2)
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/lps-gateway-compare.XXXXXX")
mock_pid=""
lps_pid=""
portkey_pid=""

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
  local pid
  for pid in "$portkey_pid" "$lps_pid" "$mock_pid"; do
    stop_pid "$pid" || true
  done
  portkey_pid=""
  lps_pid=""
  mock_pid=""
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# utime + stime of a process and its threads, in clock ticks.
cpu_ticks() {
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# The value of `key` in a load generator summary (first word only).
val() {
  awk -v k="$2" '$1 == k { print $2; exit }' "$1"
}

calc() {
  awk "BEGIN { printf \"$1\", $2 }"
}

"${bench_nice[@]}" "$build_dir/lps-mock-provider" --port=0 --api-key=test-key \
  --rate-limit-requests=0 --rate-limit-tokens=0 >"$work/mock.out" 2>"$work/mock.err" &
mock_pid=$!
mock_port=$(wait_port "mock provider" "$work/mock.out" "$mock_pid")
mock_url="http://127.0.0.1:$mock_port/v1"

# lps's gateway path to the mock: gpt-* models route to OpenAI, whose base URL is the mock.
# The concurrency limit is raised above the closed loop's calls in flight so that the gate
# never refuses one (a 429 would end the call: the gateway path does not queue).
lps_port=""
if [[ " $targets " == *" lps "* ]]; then
  lps_flags=(--http-port=0 "--data-dir=$work/lps-data" --log-level=warn
    "--openai-base-url=$mock_url" "--openai-max-concurrent-calls=$((concurrency * 4))"
    "${lps_extra[@]}")
  OPENAI_API_KEY=test-key start_lps "${bench_nice[@]}" "$lps_bin" "${lps_flags[@]}" || exit 1
  lps_port=$port
fi

portkey_port=""
if [[ " $targets " == *" portkey "* ]]; then
  echo "== starting: node tools/portkey/start-loopback.mjs" >&2
  "${bench_nice[@]}" node tools/portkey/start-loopback.mjs >"$work/portkey.log" \
    2>"$work/portkey.out" &
  portkey_pid=$!
  portkey_port=$(wait_port portkey "$work/portkey.out" "$portkey_pid")
fi

failed=0
table=()

# One load generator run against one target; appends a row to the table.
run_one() {
  local load=$1 target=$2 count=$3 round=$4 out="$work/r$4-$1-$2.txt"
  local url pid="" flags=()
  case $target in
  direct) url=$mock_url ;;
  lps)
    url="http://127.0.0.1:$lps_port/v1"
    pid=$lps_pid
    ;;
  portkey)
    url="http://127.0.0.1:$portkey_port/v1"
    pid=$portkey_pid
    flags=("--header=x-portkey-provider: openai" "--header=x-portkey-custom-host: $mock_url")
    ;;
  esac
  if [[ $load == rate ]]; then flags+=("--rate=$rate"); fi
  if [[ $stream == 1 ]]; then flags+=("--stream=true"); fi
  echo "== round $round, $load, $target: $count calls (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  local mock_before gw_before=0 gw_after=0 rc=0
  mock_before=$(cpu_ticks "$mock_pid")
  [[ -z $pid ]] || gw_before=$(cpu_ticks "$pid")
  "${bench_nice[@]}" "$build_dir/lps-loadgen" --mode=direct "--url=$url" "--count=$count" \
    "--concurrency=$concurrency" "--essay-bytes=$essay_bytes" "--timeout-seconds=$timeout_s" \
    "${flags[@]}" >"$out" 2>"$out.err" || rc=$?
  local mock_after
  mock_after=$(cpu_ticks "$mock_pid")
  [[ -z $pid ]] || gw_after=$(cpu_ticks "$pid")
  if [[ $rc -ne 0 ]]; then
    echo "gateway_compare: $load run against $target failed (exit $rc):" >&2
    grep -E '^(answered|ok|failed)' "$out" >&2 || true
    failed=1
  fi
  local clk gw_us="-" d50 d99 added50="-" added99="-"
  clk=$(getconf CLK_TCK)
  [[ -z $pid ]] || gw_us=$(calc %.0f "($gw_after - $gw_before) * 1e6 / $clk / $count")
  d50=$(val "$work/r$round-$load-direct.txt" call_p50_ms 2>/dev/null || true)
  d99=$(val "$work/r$round-$load-direct.txt" call_p99_ms 2>/dev/null || true)
  if [[ $target != direct && -n $d50 ]]; then
    added50=$(calc %+.2f "$(val "$out" call_p50_ms) - $d50")
    added99=$(calc %+.2f "$(val "$out" call_p99_ms) - $d99")
  fi
  local lg_us late="-"
  lg_us=$(sed -n 's/^loadgen_cpu_s .*(\([0-9]*\) us.*/\1/p' "$out")
  [[ $load != rate ]] || late=$(val "$out" rate_late)
  local first="-"
  [[ $stream != 1 ]] || first="$(val "$out" first_chunk_p50_ms) / $(val "$out" first_chunk_p99_ms)"
  table+=("$(printf '| %s | %s | %s | %s | %s | %s / %s / %s | %s / %s | %s | %s | %s | %s | %s |' \
    "$round" "$load" "$target" "$(val "$out" calls_per_s)" "$first" "$(val "$out" call_p50_ms)" \
    "$(val "$out" call_p90_ms)" "$(val "$out" call_p99_ms)" "$added50" "$added99" "$gw_us" \
    "$(calc %.0f "($mock_after - $mock_before) * 1e6 / $clk / $count")" "${lg_us:--}" "$late" \
    "$(val "$out" result)")")
}

echo "machine: nproc $(nproc), load $(cut -d' ' -f1-3 /proc/loadavg), rate $rate/s x" \
  "$rate_count calls, closed loop at concurrency $concurrency x $throughput_count calls," \
  "essay bytes $essay_bytes, stream $stream, nice ${BENCH_NICE:-none}, lps $lps_bin," \
  "portkey $(node -p 'require("./tools/portkey/package-lock.json").packages["node_modules/@portkey-ai/gateway"].version' 2>/dev/null || echo -)"
for round in $(seq 1 "$rounds"); do
  for target in $targets; do run_one rate "$target" "$rate_count" "$round"; done
  for target in $targets; do run_one closed "$target" "$throughput_count" "$round"; done
done

stop_rc=0
pid=$lps_pid
lps_pid=""
stop_pid "$pid" || stop_rc=$?
if [[ $stop_rc -ne 0 ]]; then
  echo "gateway_compare: lps exited with status $stop_rc; its stderr:" >&2
  tail -n 20 "$work/lps.err" >&2
  failed=1
fi

echo
echo "rate: open loop at $rate calls/s; closed: $concurrency calls in flight. Latency: send ->"
echo "answer read (streamed: its last byte), ms; first chunk: send -> the first event, ms."
echo "added: p50 / p99 minus direct's of the same load and round. CPU in us"
echo "per call (user + system): gw = the gateway process (lps or Portkey's node), mock, lg ="
echo "the load generator. late: open-loop calls started > 1 ms after their due time."
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| round | load | target | calls/s | first chunk p50 / p99 ms | p50 / p90 / p99 ms | added p50 / p99 ms | gw CPU us/call | mock CPU us/call | lg CPU us/call | late | result |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
exit "$failed"
