#!/usr/bin/env bash
# Issue 13's run: N requests through lps to lps-mock-provider (OpenAI dialect) at a fixed
# provider latency with OPENAI_MAX_CONCURRENT_CALLS=C, in per_request mode (one HTTP call per
# request) unless a mode is given (serial_bundle: C bundles of up to 4 calls each). Prints the
# calls the provider received (must equal N: nothing paid twice), the peak of calls in flight
# at the provider (per_request: should reach C) beside the peak of lps' own gauge
# llm_provider_inflight_provider_calls (scraped with the mock's stats every 0.2 s; should be
# the same) and its value after the run (must be 0), the peaks of the calls waiting for a
# connection and of the bundles in flight, and the wall time.
#
#   tools/provider_concurrency_run.sh [count] [latency_ms] [concurrency] [build_dir] [mode]
#   defaults: 5000 2000 4000 build per_request   (the scaled-down CI version is the
#   service_test case "1000 requests at 1 s provider latency with 500 concurrent calls are
#   each sent once")
#
# Needs `ulimit -n` above 2 x the calls at once (C, or 4 C with serial_bundle) + a few
# hundred (both processes run here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tools/bench_lib.sh
source "$here/bench_lib.sh"

count=${1:-5000}
latency_ms=${2:-2000}
concurrency=${3:-4000}
build_dir=${4:-build}
mode=${5:-per_request}

calls_per_bundle=$([[ $mode == serial_bundle ]] && echo 4 || echo 1)
ulimit -n "$((2 * concurrency * calls_per_bundle + 1024))" 2>/dev/null \
  || echo "${0##*/}: cannot raise ulimit -n; connections may fail" >&2
work=$(mktemp -d)
mock_pid="" lps_pid=""
cleanup() {
  stop_pid "$lps_pid" || true
  stop_pid "$mock_pid" || true
  rm -rf "$work"
}
trap cleanup EXIT

"$build_dir/lps-mock-provider" --latency-ms="$latency_ms" --io-threads=2 \
  --rate-limit-requests=0 --rate-limit-tokens=0 >"$work/mock.out" 2>"$work/mock.err" &
mock_pid=$!
mock_port=$(wait_port "mock provider" "$work/mock.out" "$mock_pid")

OPENAI_API_KEY=test-key "$build_dir/lps" --http-port=0 --data-dir="$work/data" \
  --log-level=warn --default-llm-provider=openai --queue-processing-mode="$mode" \
  --openai-base-url="http://127.0.0.1:$mock_port/v1" \
  --openai-default-model=gpt-4o-mini-2024-07-18 \
  --openai-max-concurrent-calls="$concurrency" >"$work/lps.out" 2>"$work/lps.err" &
lps_pid=$!
lps_port=$(wait_port lps "$work/lps.out" "$lps_pid")

python3 - "$count" >"$work/bulk.json" <<'EOF'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"requests": [{"user_prompt": f"Compare essay {i} A and essay {i} B."}
                               for i in range(n)]}))
EOF

stats() { curl -s "http://127.0.0.1:$mock_port/_mock/stats"; }
scrape() { curl -s "http://127.0.0.1:$lps_port/metrics"; }
# The value of one series in a scrape ($1), 0 when it is absent.
series() { awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' <<<"$1"; }
max() { echo $(($1 > $2 ? $1 : $2)); }
inflight='llm_provider_inflight_provider_calls{provider="openai"}'
waiting='llm_provider_calls_waiting_for_connection{provider="openai"}'
bundles='llm_provider_inflight_bundles{provider="openai"}'
peak_inflight=0 peak_waiting=0 peak_bundles=0
start=$(date +%s.%N)
curl -s -o /dev/null -w "submitted: HTTP %{http_code}\n" -H 'Content-Type: application/json' \
  --data-binary @"$work/bulk.json" "http://127.0.0.1:$lps_port/api/v1/comparisons"
# Done when every request reached the provider and no call is left in flight.
deadline=$(($(date +%s) + 600))
while :; do
  s=$(stats)
  calls=$(jq .calls <<<"$s")
  in_flight=$(jq .in_flight <<<"$s")
  m=$(scrape)
  peak_inflight=$(max "$peak_inflight" "$(series "$m" "$inflight")")
  peak_waiting=$(max "$peak_waiting" "$(series "$m" "$waiting")")
  peak_bundles=$(max "$peak_bundles" "$(series "$m" "$bundles")")
  [[ $calls -ge $count && $in_flight -eq 0 ]] && break
  if [[ $(date +%s) -gt $deadline ]]; then
    echo "${0##*/}: gave up after 600 s: $calls calls, $in_flight in flight" >&2
    exit 1
  fi
  sleep 0.2
done
end=$(date +%s.%N)
sleep 3 # a call given up and retried would arrive now
s=$(stats)
echo "requests: $count, latency: ${latency_ms} ms, OPENAI_MAX_CONCURRENT_CALLS: $concurrency, $mode"
echo "provider calls: $(jq .calls <<<"$s") (ok $(jq '.by_outcome.ok // 0' <<<"$s"))"
m=$(scrape)
echo "peak calls in flight at the provider: $(jq .peak_in_flight <<<"$s")"
echo "peak of lps' $inflight: $peak_inflight (after the run: $(series "$m" "$inflight"))"
echo "peak of lps' $waiting: $peak_waiting (after the run: $(series "$m" "$waiting"))"
echo "peak of lps' $bundles: $peak_bundles"
echo "time to the last answer: $(python3 -c "print(round($end - $start, 1))") s"
[[ $(jq .calls <<<"$s") -eq $count && $(series "$m" "$inflight") -eq 0 ]]
