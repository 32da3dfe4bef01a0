#!/usr/bin/env bash
# The clean-room part of `make demo` (docs/cleanroom.md): on a three-node sandbox, three banks
# run a joint anti-money-laundering analysis and four hospitals (three with the fallback data)
# train one model, every step with the `coffer cleanroom` command a party would use. Prints
# what each party received. Usage: scripts/demo_cleanroom.sh COFFER_BINARY OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sandbox_lib.sh
source scripts/sandbox_lib.sh
coffer=$1
out=$2
data=${COFFER_DATA_DIR:-../shared/data}

rm -rf "$out"
mkdir -p "$out"

echo "==> 8.1 the parties' files: each bank's transfers, each hospital's patients"
"$coffer" cleanroom sample aml --data "$data" --out "$out/aml"
"$coffer" cleanroom sample hospitals --data "$data" --out "$out/hospitals"
mapfile -t banks < <(jq -r '.parties[].party' "$out/aml/scenario.json")
mapfile -t hospitals < <(jq -r '.parties[].party' "$out/hospitals/scenario.json")
echo "AML data: $(jq -r .source "$out/aml/scenario.json"); banks: ${banks[*]}"
echo "hospital data: $(jq -r .source "$out/hospitals/scenario.json"); hospitals: ${hospitals[*]}"

echo
echo "==> 8.2 a three-node service with every party as a user"
sb="$out/sandbox"
users=$(IFS=,; echo "${banks[*]},${hospitals[*]}")
start_sandbox "$coffer" "$sb" "$out/sandbox.log" --users "$users"
as() {
  local party=$1
  shift
  "$coffer" cleanroom "$@" --sandbox "$sb" --as "$party"
}

echo
echo "==> 8.3 ${banks[0]} checks the clean room's key: signed by the service, held by attested nodes"
as "${banks[0]}" key

# Declares and uploads every party's dataset of a scenario folder.
upload_all() {
  local dir=$1
  local n
  n=$(jq '.parties | length' "$dir/scenario.json")
  for i in $(seq 0 $((n - 1))); do
    local party dataset
    party=$(jq -r ".parties[$i].party" "$dir/scenario.json")
    dataset=$(jq -r ".parties[$i].dataset" "$dir/scenario.json")
    as "$party" declare --schema "$dir/$(jq -r ".parties[$i].schema" "$dir/scenario.json")" \
      >/dev/null
    as "$party" upload --dataset "$dataset" \
      --csv "$dir/$(jq -r ".parties[$i].csv" "$dir/scenario.json")" 2>/dev/null
  done
}

# Proposes analysis NAME of a scenario as its first party, has every party approve it, runs
# it as its first trigger, and prints the run's audit record. Sets run_id.
agree_and_run() {
  local dir=$1 name=$2
  shift 2
  local parties=("$@")
  local file id
  file="$dir/$(jq -r ".analyses[] | select(.name == \"$name\") | .file" "$dir/scenario.json")"
  as "${parties[0]}" propose --analysis "$file"
  id=$(sha256sum "$file" | cut -d' ' -f1)
  echo "a run before the parties approved is refused:"
  if as "${parties[0]}" run --analysis "$id" 2>&1; then
    echo "demo: an unapproved analysis ran"
    exit 1
  fi
  for p in "${parties[@]}"; do
    as "$p" approve --analysis "$id" >/dev/null
  done
  echo "all ${#parties[@]} owners approved $id; ${parties[0]} runs it:"
  as "${parties[0]}" run --analysis "$id" --json >"$out/run.json"
  jq -c '{run_id, analysis_id, trigger, datasets, suppressed_rows, duration_ms, tx_id}' \
    "$out/run.json"
  run_id=$(jq -r .run_id "$out/run.json")
}

echo
echo "==> 8.4 AML: every bank uploads its transfers, encrypted to the clean room"
upload_all "$out/aml"
as "${banks[0]}" datasets

echo
echo "==> 8.5 AML: the banks agree on the joint analysis by its hash, then run it"
agree_and_run "$out/aml" joint "${banks[@]}"

echo
echo "==> 8.6 AML: what each bank received (flags on its own accounts only)"
for b in "${banks[@]}"; do
  as "$b" fetch --run "$run_id" --json >"$out/result_$b.json"
  jq -r --arg b "$b" '"\($b): \(.rows | length) flagged accounts of its own, flags \(.aggregates.flags | tojson); first rows: \(.rows[:3] | tojson)"' \
    "$out/result_$b.json"
  own=$(jq -r '.rows[][0]' "$out/result_$b.json" | awk -v b="${b#bank_}" '$1 % 3 != b' | wc -l)
  [[ "$own" == 0 ]] || { echo "demo: $b received accounts of another bank"; exit 1; }
done

echo
echo "==> 8.7 hospitals: every hospital uploads its patients, they agree on the training, one runs it"
upload_all "$out/hospitals"
agree_and_run "$out/hospitals" joint "${hospitals[@]}"

echo
echo "==> 8.8 hospitals: what each hospital received (the model, and its own evaluation only)"
for h in "${hospitals[@]}"; do
  as "$h" fetch --run "$run_id" --json >"$out/result_$h.json"
  jq -r --arg h "$h" '"\($h): evaluation rows \(.rows | tojson); model: intercept \(.aggregates.model.intercept), \(.aggregates.model.weights | length) weights, \(.aggregates.model.train_rows) training rows"' \
    "$out/result_$h.json"
done

echo
echo "==> 8.9 a party that is not a recipient gets nothing, and the audit record has a receipt"
if as "${banks[0]}" fetch --run "$run_id" --json >/dev/null 2>&1; then
  echo "demo: a bank fetched the hospitals' result"
  exit 1
fi
echo "${banks[0]} fetching the hospitals' run: refused"
as "${hospitals[0]}" runs
tx=$(jq -r .tx_id "$out/run.json")
port=$(sed -E 's/.*"client_port": *([0-9]+).*/\1/' "$sb/node0/data/node_ports.json")
ids="$sb/identities"
for _ in $(seq 1 100); do
  code=$(curl --silent --cacert "$sb/node0/data/service_cert.pem" \
    --cert "$ids/${hospitals[0]}_cert.pem" --key "$ids/${hospitals[0]}_privk.pem" \
    -o "$out/run-receipt.json" -w '%{http_code}' \
    "https://127.0.0.1:$port/app/receipt?transaction_id=$tx&include_public=true")
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
echo "${hospitals[0]} verifies a receipt for the audit record (transaction $tx) offline:"
"$coffer" receipt verify "$out/run-receipt.json" --service-cert "$sb/node0/data/service_cert.pem"

kill -TERM "$sandbox_pid"
wait "$sandbox_pid" || true
trap - EXIT
for i in 0 1 2; do
  "$coffer" ledger verify "$sb/node$i/data/ledger" --service-cert "$sb/node0/data/service_cert.pem"
done
first_row=$(sed -n 2p "$out/aml/${banks[0]}.csv")
if grep -rqF "$first_row" "$sb"/node*/data; then
  echo "demo: an uploaded row reached the disk in clear"
  exit 1
fi
echo "no uploaded row is in clear in any node's files"
