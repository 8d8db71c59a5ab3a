#!/usr/bin/env bash
# Installs the build and test dependencies from Debian 12's packages.
# Idempotent and quiet: when everything is present it prints nothing and exits 0.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libcaf-dev            # CAF 0.17.6: actors
  libzmq3-dev cppzmq-dev # ZeroMQ 4.3.4 (CURVE) and its C++ binding
  libmsgpack-cxx-dev    # MessagePack wire codec
  librocksdb-dev        # journal, snapshots, timers
  libssl-dev            # AES-GCM at rest, SHA-256 audit chain
  libboost-program-options-dev
  libyaml-cpp-dev       # the rules file (YAML, as operators know from Prometheus)
  catch2                # Catch2 v2 test framework
  python3-zmq python3-msgpack # second-language protocol tests (Debian's /usr/bin/python3)
  clang libclang-rt-14-dev    # libFuzzer targets for the wire decoders
  prometheus-cpp-dev    # the /metrics endpoint: registry, histograms and an HTTP exposer
  iproute2              # network namespaces: the cluster tests cut links between members
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
