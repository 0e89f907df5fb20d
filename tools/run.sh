#!/usr/bin/env bash
# Builds lps and runs it on its embedded defaults: mock provider, SQLite store under ./var,
# HTTP on 127.0.0.1:8090. Extra arguments go to lps (e.g. --http-port=9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target lps
exec ./build/lps --config-file=config/lps.ini "$@"
