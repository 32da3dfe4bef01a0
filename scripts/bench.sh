#!/usr/bin/env bash
# Runs every micro-benchmark binary of a build and prints each one's table and ratios.
set -euo pipefail
build=${1:-build/bench}
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for b in crypto_bench kv_bench ledger_storage_bench ledger_bench cleanroom_bench; do
  if [[ -x "$build/bench/$b" ]]; then
    echo
    echo "==> $b"
    "$build/bench/$b" --benchmark_min_time=0.2
  fi
done
if [[ -x "$build/bench/load_bench" ]]; then
  echo
  echo "==> load_bench (a single node over TLS)"
  "$build/bench/load_bench" --duration-s 3
fi
if [[ -x "$build/bench/replication_bench" ]]; then
  echo
  echo "==> replication_bench (three Coffer nodes beside three etcd members, TLS, fsync)"
  if command -v etcd >/dev/null; then
    "$build/bench/replication_bench" --duration-s 5 --etcd "$(command -v etcd)"
  else
    echo "etcd is missing (Debian package etcd-server): running the Coffer half only"
    "$build/bench/replication_bench" --only coffer --duration-s 5
  fi
fi
