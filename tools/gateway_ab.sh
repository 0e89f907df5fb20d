#!/usr/bin/env bash
# Gateway overhead of two lps binaries against direct calls, interleaved in one run: one mock
# provider server, both lps started at once (OpenAI base URL = the mock), then per round the
# same load straight to the mock, through the old lps and through the new one (lps-loadgen
# --mode=direct, non-streaming chat/completions). Prints p50 / p90 / p99 per run and the lps
# process's CPU per call. Not part of the test suite; docs/benchmarks.md, "Gateway overhead at
# 1,000 calls/s, direct first attempt".
#
#   OLD_BIN=/tmp/lps-old tools/gateway_ab.sh [count] [rounds] [concurrency] [rate]
#
# Defaults: 2000 calls, 3 rounds, concurrency 1, no rate (closed loop). A rate makes the load
# open loop at that many calls a second, concurrency capping the calls in flight.
# Environment: OLD_BIN (required), NEW_BIN (default $BUILD_DIR/lps), BUILD_DIR (build),
# BENCH_NICE (-15 as root: every process at that niceness, beside builds at nice 19),
# STREAM=1 (streamed calls, `stream: true` with include_usage; adds the first chunk's p50).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
rounds=${2:-3}
conc=${3:-1}
rate=${4:-}
build_dir=${BUILD_DIR:-build}
old_bin=${OLD_BIN:?OLD_BIN: the binary to compare against}
new_bin=${NEW_BIN:-$build_dir/lps}
nice_cmd=()
[[ -z ${BENCH_NICE:-} ]] || nice_cmd=(nice -n "$BENCH_NICE")
work=$(mktemp -d "${TMPDIR:-/tmp}/lps-gateway-ab.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The port a server printed as "<what> listening on http://127.0.0.1:PORT".
port_of() {
  local what=$1 file=$2 port=""
  for _ in $(seq 1 300); do
    port=$(sed -n "s|^$what listening on http://127\\.0\\.0\\.1:\\([0-9][0-9]*\\)\$|\\1|p" "$file")
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "gateway_ab: $what reported no port" >&2; exit 1; }
  echo "$port"
}

"${nice_cmd[@]}" "$build_dir/lps-mock-provider" --port=0 --api-key=test-key \
  --rate-limit-requests=0 --rate-limit-tokens=0 >"$work/mock.out" 2>&1 &
pids+=($!)
mock_url="http://127.0.0.1:$(port_of "mock provider" "$work/mock.out")/v1"
declare -A lps_port lps_pid
for name in old new; do
  bin=$old_bin
  [[ $name == new ]] && bin=$new_bin
  OPENAI_API_KEY=test-key "${nice_cmd[@]}" "$bin" --http-port=0 "--data-dir=$work/data-$name" \
    --log-level=warn "--openai-base-url=$mock_url" --openai-max-concurrent-calls=256 \
    >"$work/$name.out" 2>&1 &
  lps_pid[$name]=$!
  pids+=($!)
  lps_port[$name]=$(port_of lps "$work/$name.out")
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() {
  local name=$1 url=$2 pid=${3:-} before=0 cpu=-
  local flags=(--mode=direct "--url=$url" "--count=$count" "--concurrency=$conc"
    --essay-bytes=3000 --timeout-seconds=300)
  [[ -z $rate ]] || flags+=("--rate=$rate")
  [[ ${STREAM:-0} != 1 ]] || flags+=(--stream=true)
  [[ -z $pid ]] || before=$(cpu_ticks "$pid")
  "${nice_cmd[@]}" "$build_dir/lps-loadgen" "${flags[@]}" >"$work/run.txt" 2>&1
  [[ -z $pid ]] || cpu=$((($(cpu_ticks "$pid") - before) * 1000000 / $(getconf CLK_TCK) / count))
  grep -Eq '^result +OK' "$work/run.txt" || { echo "gateway_ab: $name run failed:" >&2; cat "$work/run.txt" >&2; }
  printf '%-6s load %-5s first %-6s p50 %-6s p90 %-6s p99 %-7s lps CPU us/call %s\n' "$name" \
    "$(cut -d' ' -f1 /proc/loadavg)" "$(awk '/^first_chunk_p50_ms/{print $2}' "$work/run.txt")" \
    "$(awk '/^call_p50_ms/{print $2}' "$work/run.txt")" \
    "$(awk '/^call_p90_ms/{print $2}' "$work/run.txt")" \
    "$(awk '/^call_p99_ms/{print $2}' "$work/run.txt")" "$cpu"
}
echo "count $count, rounds $rounds, concurrency $conc, rate ${rate:-closed loop}, stream ${STREAM:-0}, old $old_bin, new $new_bin"
for _ in $(seq 1 "$rounds"); do
  run direct "$mock_url"
  run old "http://127.0.0.1:${lps_port[old]}/v1" "${lps_pid[old]}"
  run new "http://127.0.0.1:${lps_port[new]}/v1" "${lps_pid[new]}"
done
