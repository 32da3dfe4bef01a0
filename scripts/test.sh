#!/usr/bin/env bash
# The whole test run behind `make test`: set-up, a release build with assertions on and all
# tests, then an ASan+UBSan build of the core libraries and their unit tests, then the format
# check. Prints the time of each phase.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
total_start=$(date +%s)
declare -a phase_names=()
declare -a phase_secs=()

phase() {
  local name=$1
  shift
  local start
  start=$(date +%s)
  echo "==> phase: $name"
  "$@"
  local secs=$(($(date +%s) - start))
  phase_names+=("$name")
  phase_secs+=("$secs")
  echo "==> phase: $name took ${secs}s"
}

run_ctest() {
  local dir=$1
  # Pass the data location through; tests fail if it is absent unless the opt-out is set.
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

phase setup scripts/setup.sh
phase configure-release cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithAsserts
phase build-release cmake --build build/release -j "$jobs"
phase test-release run_ctest build/release
# What the long tests report on success (ctest keeps it only in its log): the simulator's seed
# and fault counts, the real-process fault test's failovers and history check, and the
# clean-room scenarios' figures, and what disaster recovery brought back.
summarise_release() {
  local log=build/release/Testing/Temporary/LastTest.log
  grep -h -E '^(consensus sim:|ReplicationTest seed=|failover ms:|ops [0-9]+:|lincheck:|ledgers identical|aml figures:|hospital figures:|disaster recovery:)' \
    "$log" || echo "(no summary lines found in $log)"
}
phase summary-release summarise_release
phase configure-asan cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithAsserts \
  -DCOFFER_SANITIZE=ON -DCOFFER_CORE_ONLY=ON -DCOFFER_BENCH=OFF
phase build-asan cmake --build build/asan -j "$jobs"
# The consensus simulator's seed sweep is about ten times slower under the sanitizers: the
# release phase runs the full 2,000 seeds, the sanitizer phase a smaller sweep.
run_ctest_asan() {
  COFFER_SIM_SEEDS=200 run_ctest build/asan
}
phase test-asan run_ctest_asan
phase format-check scripts/format.sh

echo
echo "phase times:"
for i in "${!phase_names[@]}"; do
  printf '  %-18s %5ss\n' "${phase_names[$i]}" "${phase_secs[$i]}"
done
printf '  %-18s %5ss\n' total $(($(date +%s) - total_start))
