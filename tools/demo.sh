#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs one node on its
# embedded defaults with a simulated ward streaming telemetry into it. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DALERT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target alertd alert-sim

data=var/demo
mkdir -p "$data"
echo "demo: node data in $data (delete it to start afresh); Ctrl-C to stop"
echo "demo: alerts appear as 'component=alerts event=fired' lines; escalation to pagers is"
echo "demo: not built yet (see docs/architecture.md), so alerts are logged, not paged"

"$build/tools/alertd" --data-dir "$data/alertd" --stats-interval 10 &
node_pid=$!
sim_pid=
cleanup() {
  trap - INT TERM EXIT
  [ -n "$sim_pid" ] && kill -INT "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
  kill -INT "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
  echo "demo: stopped"
}
trap cleanup INT TERM EXIT

# Wait (bounded) for the node to answer before starting the ward.
for _ in $(seq 1 100); do
  if ! kill -0 "$node_pid" 2>/dev/null; then echo "demo: alertd did not start" >&2; exit 1; fi
  (exec 3<>/dev/tcp/127.0.0.1/7600) 2>/dev/null && break
  sleep 0.1
done
"$build/tools/alert-sim" --patients 12 --deteriorating 2 --deterioration-minutes 2 &
sim_pid=$!
wait "$sim_pid" || true
