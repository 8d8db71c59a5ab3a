#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything with warnings as
# errors, and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
build=build/test
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALERT_WERROR=ON \
  ${ALERT_SANITIZE:+-DALERT_SANITIZE=ON} >/dev/null
cmake --build "$build" -j "$(nproc)"
ctest --test-dir "$build" --output-on-failure -j "$(nproc)" --timeout 300
