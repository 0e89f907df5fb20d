#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking lps needs.
# Idempotent: packages already present are skipped, so a second run is fast.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libcaf-dev                       # CAF 0.17.6 (core, io, openssl)
  libboost1.81-dev libboost-json1.81-dev   # Beast/Asio headers and Boost.JSON (versioned: unversioned pulls 1.74)
  libsimdjson-dev                  # simdjson: the gateway's request check
  libspdlog-dev catch2             # logging, unit tests (Catch2 2.13)
  libcli11-dev                     # lpsctl's command line
  libsqlite3-dev libssl-dev        # embedded store, TLS and hashing
  openssl                          # the CLI: test certificates for mutual TLS between cluster nodes
  postgresql-15 libpq-dev          # the shared store: a throw-away server for tests (tools/pg.sh), libpq
  libjemalloc-dev                  # the allocator lps links (see docs/benchmarks.md)
  prometheus                       # promtool, to check the /metrics exposition
  clang libclang-rt-14-dev         # libFuzzer and sanitizers for tools/fuzz.sh
  curl python3                     # integration tests and the README examples
  chromium nodejs                  # the web console's browser tests (tests/browser; Node >= 20)
                                   # and the gateway's OpenAI SDK tests (tests/sdk)
)

# playwright-core for the browser tests, as pinned by tools/browser/package-lock.json, into
# tools/browser/node_modules (npm ls fails while it is missing or differs from the lock file).
install_browser_driver() {
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/browser"
  npm ls --prefix "$dir" >/dev/null 2>&1 && return 0
  echo "setup: installing playwright-core into $dir"
  npm ci --prefix "$dir" --no-audit --no-fund
}

# The official OpenAI SDK for the gateway's tests, as pinned by tools/sdk/package-lock.json,
# into tools/sdk/node_modules (the same way).
install_openai_sdk() {
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/sdk"
  npm ls --prefix "$dir" >/dev/null 2>&1 && return 0
  echo "setup: installing the openai SDK into $dir"
  npm ci --prefix "$dir" --no-audit --no-fund
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  install_browser_driver
  install_openai_sdk
  exit 0
fi

echo "setup: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
# The prometheus package may start a server we do not need; only promtool is used.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
fi
install_browser_driver
install_openai_sdk
echo "setup: done"
