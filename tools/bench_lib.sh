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
  # A URL's password (--postgres-url) is not printed.
  echo "== starting: $bin $*" | sed 's#\(://[^:/@]*\):[^@/]*@#\1:***@#g' >&2
  "$bin" "$@" >"$work/lps.out" 2>"$work/lps.err" &
  lps_pid=$!
  if ! port=$(wait_port lps "$work/lps.out" "$lps_pid"); then
    cat "$work/lps.err" >&2
    return 1
  fi
}

# The command prefix that runs a program at niceness $BENCH_NICE when that is set (as root,
# e.g. -15, so that builds at nice 19 beside a benchmark barely disturb it): the process
# renices itself and then becomes the program (same PID), so every thread it starts has
# that niceness too. With the kernel's autogroups (sched_autogroup_enabled, Debian's
# default) niceness counts only within a session, and every session shares the CPU equally
# with the others (a benchmark at -15 got 10 % of a core beside seven engineers' builds).
# BENCH_AUTOGROUP=1 therefore also starts the program in a session of its own (setsid, same
# PID when started in the background of a script) and gives that session's autogroup the
# niceness: the benchmark then takes nearly all of the CPU from other sessions, so keep it
# to short runs (a restart) on a shared machine.
# Use as "${bench_nice[@]}" program args...
# shellcheck disable=SC2034  # used by the scripts that source this file
bench_nice=()
if [[ -n ${BENCH_NICE:-} && ${BENCH_AUTOGROUP:-0} == 1 ]]; then
  # shellcheck disable=SC2016,SC2034  # expanded by the inner shells; used by the callers
  bench_nice=(bash -c 'renice -n "$0" -p $$ >/dev/null && exec setsid bash -c '"'"'echo "$0" \
    >/proc/$$/autogroup 2>/dev/null; exec "$@"'"'"' "$0" "$@"' "$BENCH_NICE")
elif [[ -n ${BENCH_NICE:-} ]]; then
  # shellcheck disable=SC2016,SC2034  # expanded by the inner shell; used by the callers
  bench_nice=(bash -c 'renice -n "$0" -p $$ >/dev/null && exec "$@"' "$BENCH_NICE")
fi

# Renices every thread of the given processes to $BENCH_NICE (when set), and, with
# BENCH_AUTOGROUP=1, their autogroups (see bench_nice; a server that is a session leader, as
# PostgreSQL's postmaster).
renice_threads() {
  [[ -n ${BENCH_NICE:-} ]] || return 0
  local pid task
  for pid in "$@"; do
    if [[ ${BENCH_AUTOGROUP:-0} == 1 ]]; then
      echo "$BENCH_NICE" >"/proc/$pid/autogroup" 2>/dev/null || true
    fi
    for task in /proc/"$pid"/task/*; do
      renice -n "$BENCH_NICE" -p "${task##*/}" >/dev/null 2>&1 || true
    done
  done
}

# The PostgreSQL server whose data directory is $1: its postmaster's PID.
pg_postmaster() {
  head -n 1 "$1/postmaster.pid"
}

# CPU seconds (user + system) used so far by a PostgreSQL server: its postmaster, the children
# it has reaped (connections that ended count there) and the children that run. Only that
# server's processes, read from /proc.
pg_cpu_seconds() {
  local postmaster=$1 child
  {
    awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat"
    for child in $(ps --ppid "$postmaster" -o pid=); do
      awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || true
    done
  } | awk -v hz="$(getconf CLK_TCK)" '{s += $1} END {printf "%.2f\n", s / hz}'
}
