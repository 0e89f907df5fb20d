#!/usr/bin/env bash
# The cluster benchmark (issue #11, docs/benchmarks.md): throughput by node count and the
# failover time, on loopback with tools/cluster.sh (a throw-away PostgreSQL server and N lps
# nodes) and the mock provider at 500 ms a call, 64 calls at a time per node.
#
#   tools/cluster_bench.sh [count] [node counts]     e.g. tools/cluster_bench.sh 20000 "1 2 3"
#
# Throughput: for each node count a fresh cluster; lps-loadgen sends `count` requests in bulk
# POSTs of 100 to node-1 (every node accepts; the leader makes the provider calls) and waits
# for every callback; its summary is printed. The failover run posts to node-2. Failover: a fresh three-node cluster; a run of
# `count` requests; once 20 % of them are final, the leader gets kill -9; the failover time
# is from that kill to the first result written under the next epoch (results.epoch, the
# database's completed_at), read from the store.
#
# Pick-up: a fresh two-node cluster, the mock at 0 ms, 300 single POSTs one at a time to
# node-2 (which does not lead): the load generator's end-to-end latency is mostly the time
# the leader takes to see a request another node stored (LISTEN/NOTIFY, else its 250 ms
# poll).
#
# Environment: LPS_BIN (default build/lps), LOADGEN_BIN (default build/lps-loadgen),
# BENCH_NICE (e.g. -15: lps and the load generator at that niceness, as root),
# BENCH_FAILOVER=0 / BENCH_PICKUP=0 skip those runs, BENCH_DIR (default
# ./var/cluster-bench).
# Exit code 0 when every run's load generator passed its checks (every request accepted and
# final exactly once).

# Lists of process and thread ids are split on purpose.
# shellcheck disable=SC2046
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-20000}
node_counts=${2:-"1 2 3"}
[[ $count =~ ^[0-9]+$ ]] || {
  echo "usage: tools/cluster_bench.sh [count] [node counts]" >&2
  exit 2
}
bin=${LPS_BIN:-build/lps}
loadgen=${LOADGEN_BIN:-build/lps-loadgen}
bench_dir=${BENCH_DIR:-./var/cluster-bench}
psql=/usr/lib/postgresql/15/bin/psql
for b in "$bin" "$loadgen"; do
  [[ -x $b ]] || {
    echo "cluster_bench.sh: $b not found: cmake --build build --target lps lps-loadgen" >&2
    exit 1
  }
done

export LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS=500
export LLM_PROVIDER_SERVICE_MOCK_MAX_CONCURRENT_CALLS=64
export LLM_PROVIDER_SERVICE_LOG_LEVEL=${LLM_PROVIDER_SERVICE_LOG_LEVEL:-warn}
export LPS_BIN=$bin
status=0

renice_all() { # pids...
  [[ -n ${BENCH_NICE:-} ]] || return 0
  local pid
  for pid in "$@"; do
    renice -n "$BENCH_NICE" -p $(ls "/proc/$pid/task") >/dev/null 2>&1 || true
  done
}

cluster() { # dir command...
  local dir=$1
  shift
  LPS_CLUSTER_DIR=$dir LPS_CLUSTER_HTTP_BASE=18090 bash tools/cluster.sh "$@"
}

node_pids() { # dir
  cat "$1"/node-*.pid
}

db_url() { # dir
  bash tools/pg.sh url "$1/pg" | tail -n 1
}

sql() { # dir query
  "$psql" "$(db_url "$1")" -qAt -c "$2"
}

run_loadgen() { # out-file http-port mode concurrency
  local out=$1 port=$2 mode=$3 concurrency=$4
  local nice_prefix=()
  [[ -n ${BENCH_NICE:-} ]] && nice_prefix=(nice -n "$BENCH_NICE")
  "${nice_prefix[@]}" "$loadgen" --url="http://127.0.0.1:$port" --count="$count" --mode="$mode" \
    --bulk-size=100 --concurrency="$concurrency" --timeout-seconds=1200 >"$out" 2>"$out.progress"
}

# Whatever cluster runs when the script ends (a node that failed to start included) is
# stopped with its PostgreSQL server, so no run leaves processes or ports behind.
current_dir=""
# shellcheck disable=SC2317 # called by the EXIT trap
stop_current() {
  [[ -z $current_dir ]] || cluster "$current_dir" stop >/dev/null 2>&1 || true
}
trap stop_current EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $node_counts; do
  dir=$bench_dir/nodes-$n
  rm -rf "$dir"
  current_dir=$dir
  cluster "$dir" start "$n" >/dev/null
  renice_all $(node_pids "$dir")
  echo "== $n node(s), $count requests, provider latency 500 ms, 64 calls per node"
  if ! run_loadgen "$dir/loadgen.txt" 18091 bulk 16; then
    status=1
  fi
  cat "$dir/loadgen.txt"
  cluster "$dir" stop >/dev/null
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done

if [[ ${BENCH_PICKUP:-1} != 0 ]]; then
  dir=$bench_dir/pickup
  rm -rf "$dir"
  current_dir=$dir
  LLM_PROVIDER_SERVICE_MOCK_LATENCY_MS=0 cluster "$dir" start 2 >/dev/null
  renice_all $(node_pids "$dir")
  echo "== pick-up: 2 nodes, 300 single requests one at a time to node-2, provider latency 0"
  saved=$count
  count=300
  run_loadgen "$dir/loadgen.txt" 18092 single 1 || status=1
  count=$saved
  cat "$dir/loadgen.txt"
  cluster "$dir" stop >/dev/null
fi

if [[ ${BENCH_FAILOVER:-1} != 0 ]]; then
  dir=$bench_dir/failover
  rm -rf "$dir"
  current_dir=$dir
  cluster "$dir" start 3 >/dev/null
  renice_all $(node_pids "$dir")
  echo "== failover: 3 nodes, $count requests, kill -9 of the leader at 20 % final"
  run_loadgen "$dir/loadgen.txt" 18092 bulk 16 & # node-2: node-1, the first to start, leads
  loadgen_pid=$!
  leader="" epoch=""
  for _ in $(seq 1 6000); do
    finals=$(sql "$dir" "SELECT count(*) FROM results")
    if ((finals * 5 >= count)); then
      read -r leader epoch < <(sql "$dir" "SELECT holder, epoch FROM cluster_lease" | tr '|' ' ')
      break
    fi
    sleep 0.1
  done
  [[ -n $leader ]] || {
    echo "cluster_bench.sh: 20 % of the requests never became final" >&2
    exit 1
  }
  killed_at=$(sql "$dir" "SELECT extract(epoch FROM clock_timestamp())")
  kill -9 "$(cat "$dir/$leader.pid")"
  echo "killed $leader (epoch $epoch) at $finals finals"
  first=""
  for _ in $(seq 1 1200); do
    first=$(sql "$dir" "SELECT extract(epoch FROM min(completed_at)) FROM results WHERE epoch > $epoch")
    [[ -n $first ]] && break
    sleep 0.05
  done
  if [[ -n $first ]]; then
    echo "failover_s          $(echo "$first - $killed_at" | bc -l | sed 's/^\./0./' | cut -c1-6)"
    echo "new_leader          $(sql "$dir" "SELECT holder || ' (epoch ' || epoch || ')' FROM cluster_lease")"
  else
    echo "failover_s          no result under a newer epoch within 60 s"
    status=1
  fi
  wait "$loadgen_pid" || status=1
  cat "$dir/loadgen.txt"
  rm -f "$dir/$leader.pid"
  cluster "$dir" stop >/dev/null
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
fi
exit $status
