#!/usr/bin/env bash
# Three alertd nodes on this machine as one cluster (docs/cluster.md), with CURVE and
# encryption at rest: installs what is missing, builds, makes the keys once (in
# var/cluster/keys), starts the nodes and a pager-sink on each, and prints how to look.
# Ctrl-C stops them all. Send readings to any node: it routes them to their shard's owner.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
build=build/release
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DALERT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target alertd alert-sim pager-sink alertctl

base=var/cluster
keys="$base/keys"
ctl="$build/tools/alertctl"
mkdir -p "$base"
if [ ! -f "$keys/access.yaml" ]; then
  rm -rf "$base"/node-*
  mkdir -p "$keys"
  chmod 700 "$keys"
  for name in node-1 node-2 node-3 operator integrator gateway; do "$ctl" keygen "$name" --dir "$keys" >/dev/null; done
  "$ctl" keygen --data-keys "$keys/data.keys" >/dev/null
  pub() { sed -n 's/^public-key = "\(.*\)"$/\1/p' "$keys/$1.pub"; }
  {
    echo "version: 1"
    echo "keys:"
    for n in node-1 node-2 node-3; do printf '  - name: %s\n    role: node\n    public-key: "%s"\n' "$n" "$(pub "$n")"; done
    printf '  - name: operator\n    role: operator\n    public-key: "%s"\n' "$(pub operator)"
    printf '  - name: integrator\n    role: integrator\n    public-key: "%s"\n    devices: ["*"]\n' "$(pub integrator)"
    printf '  - name: gateway\n    role: gateway\n    public-key: "%s"\n    targets: ["*"]\n' "$(pub gateway)"
  } >"$keys/access.yaml"
fi

# Node i: peer 76i0, ingest 76i1, pager 76i2, control 76i3, metrics 94i0.
members="node-1=tcp://127.0.0.1:7610,node-2=tcp://127.0.0.1:7620,node-3=tcp://127.0.0.1:7630"
pids=()
cleanup() {
  trap - INT TERM EXIT
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "cluster: stopped"
}
trap cleanup INT TERM EXIT
for i in 1 2 3; do
  "$build/tools/alertd" --node-id "node-$i" --data-dir "$base/node-$i" --cluster.members "$members" \
    --ingest.endpoint "tcp://127.0.0.1:76${i}1" --pager.endpoint "tcp://127.0.0.1:76${i}2" \
    --control.endpoint "tcp://127.0.0.1:76${i}3" --metrics.endpoint "127.0.0.1:94${i}0" \
    --security.node-key "$keys/node-$i.key" --security.access "$keys/access.yaml" \
    --security.data-key-file "$keys/data.keys" --stats-interval 0 2>>"$base/node-$i.log" >/dev/null &
  pids+=($!)
  "$build/tools/pager-sink" --endpoint "tcp://127.0.0.1:76${i}2" --gateway gateway --answer accept --after 20 \
    --key "$keys/gateway.key" --server-key "$keys/node-$i.pub" &
  pids+=($!)
done
# A node takes readings once it sees a majority and every shard has an owner: wait
# (bounded) for node 1 to say so.
for _ in $(seq 1 150); do
  "$ctl" --endpoint tcp://127.0.0.1:7613 --key "$keys/operator.key" --server-key "$keys/node-1.pub" --timeout 2 \
    status 2>/dev/null | grep -q " with an owner\$" && break
  sleep 0.2
done
echo "cluster: three nodes; logs in $base/node-N.log; Ctrl-C stops everything"
echo "cluster: look at node 1 (or 2, 3: control ports 7623, 7633 with node-2.pub, node-3.pub):"
echo "cluster:   $ctl --endpoint tcp://127.0.0.1:7613 --key $keys/operator.key --server-key $keys/node-1.pub status"
echo "cluster: a simulated ward sends to node 1; node 1 forwards to each reading's owner"
"$build/tools/alert-sim" --endpoint tcp://127.0.0.1:7611 --patients 12 --deteriorating 2 --deterioration-minutes 2 \
  --key "$keys/integrator.key" --server-key "$keys/node-1.pub" &
pids+=($!)
wait "${pids[-1]}" || true
