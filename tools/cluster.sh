#!/usr/bin/env bash
# A local lps cluster on loopback (issue #11, docs/cluster.md): a throw-away PostgreSQL server
# (tools/pg.sh) and N lps nodes sharing it.
#
#   tools/cluster.sh start [N]   start PostgreSQL and N nodes (default 3): node-I serves HTTP on
#                                127.0.0.1:(8090+I), its middleman on 127.0.0.1:(4100+I),
#                                DATA_DIR var/cluster/node-I, log
#                                var/cluster/node-I.log; waits until each serves
#   tools/cluster.sh status      each node's process and GET /api/v1/cluster from the first live one
#   tools/cluster.sh stop        SIGTERM to every node (a leader hands the lease on), wait, stop
#                                PostgreSQL (its data stays in var/cluster/pg)
#   tools/cluster.sh certs DIR [N]  a CA (DIR/ca.pem, its key DIR/ca.key) and N node certificates
#                                it signs (DIR/node-I.pem, DIR/node-I.key; default 3) for mutual
#                                TLS between nodes (openssl; EC P-256, serverAuth and clientAuth,
#                                for 127.0.0.1 and localhost, valid 365 days)
#
# LPS_CLUSTER_TLS_DIR (a DIR of `certs`) makes `start` give node-I CLUSTER_TLS_CERT/KEY/CA from
# it (docs/cluster.md, "Security").
# LPS_CLUSTER_DIR (default ./var/cluster) and LPS_CLUSTER_HTTP_BASE (default 8090) move it;
# LPS_BIN (default build/lps) names the binary. Any other LLM_PROVIDER_SERVICE_* variable of
# the environment reaches every node (e.g. MOCK_LATENCY_MS). Nodes run the mock provider.

set -euo pipefail
cd "$(dirname "$0")/.."

command=${1:-}
dir=${LPS_CLUSTER_DIR:-./var/cluster}
base=${LPS_CLUSTER_HTTP_BASE:-8090}
bin=${LPS_BIN:-build/lps}

usage() {
  echo "usage: tools/cluster.sh start [N] | status | stop | certs DIR [N]" >&2
  exit 2
}

# The CA and the node certificates of mutual TLS between nodes. The CA's key stays in DIR:
# keep it apart from the nodes in a real deployment.
certs() {
  local out=${1:-} n=${2:-3}
  [[ -n $out && $n =~ ^[1-9][0-9]?$ ]] || usage
  mkdir -p "$out"
  (
    umask 077
    if [[ ! -f $out/ca.pem ]]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
        -subj /CN=lps-cluster-ca -keyout "$out/ca.key" -out "$out/ca.pem" 2>/dev/null
    fi
    printf '%s\n' basicConstraints=CA:FALSE keyUsage=digitalSignature \
      extendedKeyUsage=serverAuth,clientAuth subjectAltName=IP:127.0.0.1,DNS:localhost \
      >"$out/node.ext"
    for i in $(seq 1 "$n"); do
      openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=node-$i" \
        -keyout "$out/node-$i.key" -out "$out/node-$i.csr" 2>/dev/null
      openssl x509 -req -days 365 -in "$out/node-$i.csr" -CA "$out/ca.pem" -CAkey "$out/ca.key" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$out/node.ext" \
        -out "$out/node-$i.pem" 2>/dev/null
      rm -f "$out/node-$i.csr"
    done
    rm -f "$out/node.ext"
  )
  chmod 644 "$out/ca.pem" "$out"/node-*.pem
  echo "CA $out/ca.pem; nodes $out/node-{1..$n}.pem with keys $out/node-{1..$n}.key"
}

# CLUSTER_TLS_* of node-I when LPS_CLUSTER_TLS_DIR is set (as `env` arguments).
tls_env() {
  local i=$1 tls=${LPS_CLUSTER_TLS_DIR:-}
  [[ -n $tls ]] || return 0
  echo "LLM_PROVIDER_SERVICE_CLUSTER_TLS_CERT=$tls/node-$i.pem"
  echo "LLM_PROVIDER_SERVICE_CLUSTER_TLS_KEY=$tls/node-$i.key"
  echo "LLM_PROVIDER_SERVICE_CLUSTER_TLS_CA=$tls/ca.pem"
}

node_pids() {
  local f
  for f in "$dir"/node-*.pid; do
    [[ -f $f ]] && echo "$f"
  done
}

alive() {
  kill -0 "$1" 2>/dev/null
}

# Waits until the node's log says it serves (or the process died).
wait_serving() {
  local i=$1 pid=$2
  for _ in $(seq 1 300); do
    grep -q "lps listening on" "$dir/node-$i.log" 2>/dev/null && return 0
    alive "$pid" || {
      echo "cluster.sh: node-$i exited; see $dir/node-$i.log" >&2
      tail -n 5 "$dir/node-$i.log" >&2
      return 1
    }
    sleep 0.1
  done
  echo "cluster.sh: node-$i does not serve after 30 s; see $dir/node-$i.log" >&2
  return 1
}

start() {
  local n=${1:-3}
  [[ $n =~ ^[1-9][0-9]?$ ]] || usage
  [[ -x $bin ]] || {
    echo "cluster.sh: $bin not found: cmake --build build --target lps" >&2
    exit 1
  }
  mkdir -p "$dir"
  local url
  url=$(bash tools/pg.sh start "$dir/pg" | tail -n 1)
  for i in $(seq 1 "$n"); do
    if [[ -f $dir/node-$i.pid ]] && alive "$(cat "$dir/node-$i.pid")"; then
      echo "node-$i runs already (pid $(cat "$dir/node-$i.pid"))"
      continue
    fi
    # shellcheck disable=SC2046 # one VAR=value word per line of tls_env
    env $(tls_env "$i") LLM_PROVIDER_SERVICE_STORE_BACKEND=postgres \
      LLM_PROVIDER_SERVICE_POSTGRES_URL="$url" \
      LLM_PROVIDER_SERVICE_HTTP_HOST=127.0.0.1 \
      LLM_PROVIDER_SERVICE_HTTP_PORT=$((base + i)) \
      LLM_PROVIDER_SERVICE_DATA_DIR="$dir/node-$i" \
      LLM_PROVIDER_SERVICE_CLUSTER_ENABLED=true \
      LLM_PROVIDER_SERVICE_CLUSTER_NODE_NAME="node-$i" \
      LLM_PROVIDER_SERVICE_CLUSTER_HOST=127.0.0.1 \
      LLM_PROVIDER_SERVICE_CLUSTER_PORT=$((4100 + i)) \
      nohup "$bin" --config-file=config/lps.ini >"$dir/node-$i.log" 2>&1 &
    echo $! >"$dir/node-$i.pid"
    wait_serving "$i" "$!"
    echo "node-$i: http://127.0.0.1:$((base + i)) (pid $(cat "$dir/node-$i.pid"))"
  done
}

status() {
  local f first=""
  for f in $(node_pids); do
    local name pid i
    name=$(basename "$f" .pid)
    pid=$(cat "$f")
    i=${name#node-}
    if alive "$pid"; then
      echo "$name: running (pid $pid, http://127.0.0.1:$((base + i)))"
      [[ -n $first ]] || first=$((base + i))
    else
      echo "$name: not running"
    fi
  done
  [[ -n $first ]] || return 3
  curl -fsS "http://127.0.0.1:$first/api/v1/cluster"
  echo
}

stop() {
  local f
  for f in $(node_pids); do
    local pid
    pid=$(cat "$f")
    alive "$pid" && kill -TERM "$pid"
  done
  for f in $(node_pids); do
    local pid
    pid=$(cat "$f")
    for _ in $(seq 1 600); do
      alive "$pid" || break
      sleep 0.1
    done
    rm -f "$f"
  done
  bash tools/pg.sh stop "$dir/pg" >/dev/null 2>&1 || true
  echo "cluster stopped"
}

case $command in
start) start "${2:-3}" ;;
status) status ;;
stop) stop ;;
certs) certs "${2:-}" "${3:-3}" ;;
*) usage ;;
esac
