#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs one node on its
# embedded defaults with a simulated ward streaming telemetry into it and two pager-sink
# gateways receiving the pages. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DALERT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target alertd alert-sim pager-sink alertctl

data=var/demo
mkdir -p "$data"
log="$data/alertd.log"

# Keys, made once: the node's CURVE pair, one per client, the access file that gives each
# its role, and the data key file for encryption at rest (docs/security.md).
keys="$data/keys"
ctl="$build/tools/alertctl"
if [ ! -f "$keys/access.yaml" ]; then
  # A data directory from before the demo had keys is unencrypted; the node would refuse it.
  rm -rf "$data/alertd"
  mkdir -p "$keys"
  chmod 700 "$keys"
  for name in node ward-sim ward-pagers rapid-pagers demo-operator; do
    "$ctl" keygen "$name" --dir "$keys" >/dev/null
  done
  "$ctl" keygen --data-keys "$keys/data.keys" >/dev/null
  pub() { sed -n 's/^public-key = "\(.*\)"$/\1/p' "$keys/$1.pub"; }
  cat >"$keys/access.yaml" <<YAML
# Who may connect to the demo node, and as what (docs/security.md).
version: 1
keys:
  - name: ward-sim
    role: integrator
    public-key: "$(pub ward-sim)"
    devices: ["*"]
  - name: ward-pagers
    role: gateway
    public-key: "$(pub ward-pagers)"
    targets: [ward-nurse, charge-nurse, biomed]
  - name: rapid-pagers
    role: gateway
    public-key: "$(pub rapid-pagers)"
    targets: [rapid-response]
  - name: demo-operator
    role: operator
    public-key: "$(pub demo-operator)"
YAML
fi
echo "demo: node data in $data (delete it to start afresh); Ctrl-C stops everything"
echo "demo: pages appear below as PAGE lines; the node's log is in $log (tail -f it to watch"
echo "demo: every alert and escalation step)"
echo "demo: the rapid-response team's pager never answers, so their pages escalate after 1 min"
echo "demo: to the ward, whose pager accepts after 20 s and so acknowledges the alert"
echo "demo: in another terminal, with the demo operator's key:"
echo "demo:   export ALERTCTL_KEY=$keys/demo-operator.key ALERTCTL_SERVER_KEY=$keys/node.pub"
echo "demo:   $ctl alerts   (or status, alert ID, ack ID, audit...)"

"$build/tools/alertd" --data-dir "$data/alertd" --stats-interval 10 \
  --security.node-key "$keys/node.key" --security.access "$keys/access.yaml" \
  --security.data-key-file "$keys/data.keys" 2>>"$log" &
node_pid=$!
pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  kill -INT "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
  echo "demo: stopped"
}
trap cleanup INT TERM EXIT

# Wait (bounded) for the node to answer before starting the gateways and the ward.
for _ in $(seq 1 100); do
  if ! kill -0 "$node_pid" 2>/dev/null; then echo "demo: alertd did not start (see $log)" >&2; exit 1; fi
  (exec 3<>/dev/tcp/127.0.0.1/7600) 2>/dev/null && break
  sleep 0.1
done
# Two pager gateways: the ward's (nurses and equipment staff) accepts pages after 20 s; the
# rapid-response team's never answers, so its pages escalate.
server=(--server-key "$keys/node.pub")
"$build/tools/pager-sink" --gateway ward-pagers --target ward-nurse --target charge-nurse --target biomed \
  --answer accept --after 20 --by nurse.demo --key "$keys/ward-pagers.key" "${server[@]}" &
pids+=($!)
"$build/tools/pager-sink" --gateway rapid-pagers --target rapid-response --answer none \
  --key "$keys/rapid-pagers.key" "${server[@]}" &
pids+=($!)
"$build/tools/alert-sim" --patients 12 --deteriorating 2 --deterioration-minutes 2 \
  --key "$keys/ward-sim.key" "${server[@]}" &
sim_pid=$!
pids+=("$sim_pid")
wait "$sim_pid" || true
