#!/usr/bin/env bash
# Builds everything and runs every test (unit, promtool, integration) with ctest.
# Benchmarks and soak runs are not part of this: see docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
start=$(date +%s)
cmake -S . -B build -G Ninja >/dev/null
# Two jobs: the machine has 2 cores, and a Beast translation unit needs about 1 GB.
cmake --build build -j 2
echo "test.sh: build took $(( $(date +%s) - start )) s"
cd build
ctest --output-on-failure -j 2 --timeout 600
echo "test.sh: build and tests took $(( $(date +%s) - start )) s"
