# shellcheck shell=bash
# Shared by tools/bench.sh, tools/soak.sh and tools/gateway_bench.sh (sourced, not run). Messages start
# with the calling script's name.

# Stops one process we started: SIGTERM, up to 30 s, then SIGKILL. Returns its status.
stop_pid() {
  local pid=$1 rc=0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "${0##*/}: process $pid did not stop within 30 s of SIGTERM; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" || rc=$?
  return "$rc"
}

# Waits for "<what> listening on http://127.0.0.1:PORT" in $2 and prints PORT.
wait_port() {
  local what=$1 file=$2 pid=$3 port=""
  for _ in $(seq 1 300); do
    port=$(sed -n "s|^$what listening on http://127\\.0\\.0\\.1:\\([0-9][0-9]*\\)\$|\\1|p" "$file")
    [[ -n $port ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "${0##*/}: $what exited during start-up" >&2
      return 1
    fi
    sleep 0.1
  done
  [[ -n $port ]] || { echo "${0##*/}: $what did not report a port in 30 s" >&2; return 1; }
  echo "$port"
}

# Starts lps in the background with its output in $work/lps.out and lps.err; sets the
# globals lps_pid and port. Returns 1 (after printing lps's stderr) when it does not start.
start_lps() {
  local bin=$1
  shift
  echo "== starting: $bin $*" >&2
  "$bin" "$@" >"$work/lps.out" 2>"$work/lps.err" &
  lps_pid=$!
  if ! port=$(wait_port lps "$work/lps.out" "$lps_pid"); then
    cat "$work/lps.err" >&2
    return 1
  fi
}
