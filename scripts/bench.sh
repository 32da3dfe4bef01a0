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
if [[ -x "$build/bench/cleanroom_bench" && -x "$build/cli/coffer" ]]; then
  echo
  echo "==> clean-room upload through a three-node sandbox, beside the engine's CSV load"
  work=$(mktemp -d)
  trap 'kill "$sb_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
  "$build/cli/coffer" cleanroom sample aml --out "$work/aml" >/dev/null
  csv="$work/aml/bank_0.csv"
  rows=$(($(wc -l <"$csv") - 1))
  "$build/bench/cleanroom_bench" --benchmark_filter='BM_CleanroomCsvLoad/coffer' \
    --benchmark_out="$work/load.json" --benchmark_out_format=json >/dev/null 2>&1
  engine_ms=$(jq '.benchmarks[0].real_time' "$work/load.json")
  "$build/cli/coffer" sandbox --nodes 3 --dir "$work/sb" --users bank_0 --quiet >"$work/sb.log" 2>&1 &
  sb_pid=$!
  for _ in $(seq 1 600); do [[ -f "$work/sb/sandbox.json" ]] && break; sleep 0.1; done
  as=(--sandbox "$work/sb" --as bank_0)
  "$build/cli/coffer" cleanroom declare --schema "$work/aml/bank_0.schema.json" "${as[@]}" >/dev/null
  start=$(date +%s%N)
  "$build/cli/coffer" cleanroom upload --dataset bank_0 --csv "$csv" "${as[@]}" 2>/dev/null
  node_ms=$((($(date +%s%N) - start) / 1000000))
  awk -v rows="$rows" -v node="$node_ms" -v engine="$engine_ms" 'BEGIN {
    printf "upload of %d rows: through the sandbox %d ms (%.0f rows/s, key check, HPKE, TLS, commit on a majority)\n", rows, node, rows * 1000 / node
    printf "engine parse + load of the same CSV: %.1f ms (%.0f rows/s); ratio node/engine %.1f\n", engine, rows * 1000 / engine, node / engine }'
  kill -TERM "$sb_pid"
  wait "$sb_pid" || true
fi
