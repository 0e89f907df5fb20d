#!/usr/bin/env bash
# A throw-away local PostgreSQL 15 server for development and tests, on 127.0.0.1 only.
#
#   tools/pg.sh start [DIR]   create the server in DIR once (initdb), start it on the port of
#                             its last start when that is free (else on a free one), create
#                             role and database `lps`, print its URL
#   tools/pg.sh url [DIR]     print the URL of the server in DIR (postgresql://lps:...@127.0.0.1:PORT/lps)
#   tools/pg.sh status [DIR]  say whether it runs (exit 0) or not (exit 3)
#   tools/pg.sh stop [DIR]    stop it (fast shutdown); the data stays in DIR
#   tools/pg.sh destroy [DIR] stop it and delete DIR
#
# LPS_PG_FSYNC=off at start: a server that syncs nothing (the test suite uses it).
#
# DIR defaults to ./var/pg. The password is made at random when DIR is created and kept in
# DIR/password (mode 600); the server accepts only scram-sha-256 logins over TCP on
# 127.0.0.1. As root the server runs as the `postgres` user (PostgreSQL refuses to run as
# root). Needs Debian's postgresql-15 (tools/setup.sh installs it).

set -euo pipefail

pg_bin=/usr/lib/postgresql/15/bin
command=${1:-}
dir=${2:-./var/pg}

usage() {
  echo "usage: tools/pg.sh start|url|status|stop|destroy [DIR]" >&2
  exit 2
}

[[ -n $command ]] || usage
[[ -x $pg_bin/pg_ctl ]] || {
  echo "pg.sh: $pg_bin/pg_ctl not found: run tools/setup.sh (Debian postgresql-15)" >&2
  exit 1
}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data=$dir/data

# Runs a server program as the user that owns the data directory.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

running() {
  [[ -f $data/postmaster.pid ]] && as_owner "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

url() {
  local port
  port=$(cat "$dir/port")
  echo "postgresql://lps:$(cat "$dir/password")@127.0.0.1:$port/lps"
}

# The port of the last start when nothing listens on it (a restarted server keeps its URL,
# so a running lps reconnects by itself), else a free one.
pick_port() {
  python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1] or 0)))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$(cat "$dir/port" 2>/dev/null || true)"
}

init_once() {
  [[ -f $data/PG_VERSION ]] && return 0
  [[ -f $dir/password ]] || (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password")
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres "$dir"
  fi
  local pwfile=$dir/.pwfile
  (umask 077 && cat "$dir/password" >"$pwfile")
  [[ $(id -u) -eq 0 ]] && chown postgres "$pwfile"
  as_owner "$pg_bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    exit 1
  }
  rm -f "$pwfile"
}

# LPS_PG_FSYNC=off (the test suite's server): nothing is synced to disk. A server that only
# lives for one test run loses nothing it needs, and its shutdown no longer waits a minute
# for the checkpoint of every database the tests made.
throwaway_options() {
  [[ ${LPS_PG_FSYNC:-on} == off ]] && echo "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  return 0
}

start() {
  init_once
  if running; then
    url
    return 0
  fi
  pick_port >"$dir/port.new"
  mv "$dir/port.new" "$dir/port"
  local port
  port=$(cat "$dir/port")
  as_owner "$pg_bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c max_connections=200 $(throwaway_options)" \
    start >/dev/null || {
    tail -n 20 "$dir/server.log" >&2
    exit 1
  }
  # The role and database lps, once; local socket logins are trusted (the owner only).
  local sql="DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lps') THEN
    CREATE ROLE lps LOGIN CREATEDB PASSWORD '$(cat "$dir/password")'; END IF; END\$\$;"
  as_owner "$pg_bin/psql" -h "$data" -p "$port" -U postgres -d postgres -qAt \
    -c "$sql" >/dev/null
  if ! as_owner "$pg_bin/psql" -h "$data" -p "$port" -U postgres -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = 'lps'" | grep -q 1; then
    as_owner "$pg_bin/psql" -h "$data" -p "$port" -U postgres -d postgres -q -c "CREATE DATABASE lps OWNER lps"
  fi
  url
}

stop() {
  running || return 0
  as_owner "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
}

case $command in
start) start ;;
url)
  running || {
    echo "pg.sh: no server runs in $dir (tools/pg.sh start)" >&2
    exit 3
  }
  url
  ;;
status)
  if running; then
    echo "running: $(url | sed 's#//lps:[^@]*@#//lps:***@#')"
  else
    echo "stopped"
    exit 3
  fi
  ;;
stop) stop ;;
destroy)
  stop
  rm -rf "$dir"
  ;;
*) usage ;;
esac
