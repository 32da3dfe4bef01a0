#!/usr/bin/env bash
# The governance and disaster-recovery part of `make demo` (docs/governance.md,
# docs/recovery.md): on a three-node sandbox, three members grow the consortium by proposals,
# set recovery shares at 2 of 3, a user writes; then every node is lost and only a copy of one
# node's ledger folder remains. `coffer node recover` brings the service back under a new
# identity; the members accept the recovered state, one share is not enough, two are, and every
# write reads back. Usage: scripts/demo_recovery.sh COFFER_BINARY OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sandbox_lib.sh
source scripts/sandbox_lib.sh
coffer=$1
out=$2

rm -rf "$out"
mkdir -p "$out"
# Absolute: a node configuration resolves relative paths against its own folder.
out=$(cd "$out" && pwd)
sb="$out/sandbox"
start_sandbox "$coffer" "$sb" "$out/sandbox.log"
ids="$sb/identities"
# Any node will do: the member command and curl -L follow a follower's 307 to the leader.
service=$(jq -r '.nodes[0].client_address' "$sb/sandbox.json")
cert="$sb/node0/data/service_cert.pem"

# member NAME ARGS...: `coffer member ARGS` as NAME against $service / $cert.
member() {
  local name=$1
  shift
  local sub=$1
  shift
  "$coffer" member "$sub" --service "$service" --service-cert "$cert" \
    --cert "$ids/${name}_cert.pem" --key "$ids/${name}_privk.pem" "$@"
}
# The JSON answer in a member command's output (it may add a "transaction status" line).
json_of() { sed -n '/^{/,/^}/p'; }
# pass VOTERS ACTION ARGS: NAME1 proposes, the others in VOTERS vote yes until accepted.
pass() {
  local voters=$1 action=$2 args=$3
  local first=${voters%%,*} answer id state
  answer=$(member "$first" propose --action "$action" --args "$args")
  id=$(json_of <<<"$answer" | jq -r .proposal_id)
  state=$(json_of <<<"$answer" | jq -r .state)
  for voter in ${voters//,/ }; do
    [[ $state == open ]] || break
    answer=$(member "$voter" vote --proposal "$id" --yes)
    state=$(json_of <<<"$answer" | jq -r .state)
  done
  echo "  $action by ${voters}: $state"
  [[ $state == accepted ]]
}

echo "==> 9.1 three members: member0 adds member1 alone, then member0 and member1 add member2"
for m in member1 member2; do
  "$coffer" keygen --name "$m" --out "$ids" >/dev/null
done
member_args() {
  jq -n --rawfile c "$ids/$1_cert.pem" --rawfile e "$ids/$1_enc_pubk.pem" \
    '{cert: $c, encryption_public_key: $e}'
}
pass member0 set_member "$(member_args member1)"
pass member0,member1 set_member "$(member_args member2)"
echo "recovery shares at 2 of 3 (a strict majority of the three members must agree):"
pass member0,member1,member2 set_recovery_threshold '{"threshold": 2}'

echo
echo "==> 9.2 user0 writes 10 private and 10 public records"
user() {
  curl -sS -L --cacert "$cert" --cert "$ids/user0_cert.pem" --key "$ids/user0_privk.pem" "$@"
}
for i in $(seq 1 10); do
  user -X POST "https://$service/app/log/private" -H 'x-coffer-wait-ms: 5000' \
    -d "{\"id\": $i, \"msg\": \"private record $i\"}" >/dev/null
  user -X POST "https://$service/app/log/public" -H 'x-coffer-wait-ms: 5000' \
    -d "{\"id\": $i, \"msg\": \"public record $i\"}" >/dev/null
done
user "https://$service/app/log/private?id=7"
echo

echo
echo "==> 9.3 disaster: every node is killed; only a copy of node 1's ledger folder is kept"
for pid in $(jq -r '.nodes[].pid' "$sb/sandbox.json"); do
  kill -KILL "$pid" 2>/dev/null || true
done
kill "$sandbox_pid" 2>/dev/null || true
wait "$sandbox_pid" 2>/dev/null || true
cp -r "$sb/node1/data/ledger" "$out/ledger-copy"
old_cert="$out/old_service_cert.pem"
cp "$cert" "$old_cert"
"$coffer" ledger verify "$out/ledger-copy" --service-cert "$old_cert"

echo
echo "==> 9.4 coffer node recover: public replay, a new service identity that endorses the old one"
mkdir -p "$out/recovered"
# No members or users: they come back from the ledger.
jq -n --arg d "$out/recovered/data" \
  '{client_address: "127.0.0.1:0", node_address: "127.0.0.1:0", data_dir: $d, log_level: "info"}' \
  >"$out/recovered/config.json"
"$coffer" node recover --config "$out/recovered/config.json" --ledger "$out/ledger-copy" \
  >"$out/recovered/node.log" 2>&1 &
recover_pid=$!
trap 'kill "$recover_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  [[ -f "$out/recovered/data/node_ports.json" ]] && break
  kill -0 "$recover_pid" 2>/dev/null || { cat "$out/recovered/node.log"; exit 1; }
  sleep 0.1
done
if [[ ! -f "$out/recovered/data/node_ports.json" ]]; then
  echo "demo: the recovering node did not start; its log:"
  cat "$out/recovered/node.log"
  exit 1
fi
service="127.0.0.1:$(jq -r .client_port "$out/recovered/data/node_ports.json")"
cert="$out/recovered/data/service_cert.pem"
member member0 recovery | json_of | jq '{service_status, previous_fingerprints, recovered_seqno}'
echo "user0 while the service recovers (expect 503):"
user -o /dev/null -w '%{http_code}\n' "https://$service/app/log/private?id=7"

echo
echo "==> 9.5 the members accept the recovered state, then submit their shares"
pass member0,member1,member2 transition_service_to_open '{}'
share() {
  member "$1" share --submit --enc-key "$ids/$1_enc_privk.pem" --previous-service-cert "$old_cert"
}
share member0 | json_of | jq -r .message
echo "one share opens nothing; user0 still gets:"
user -o /dev/null -w '%{http_code}\n' "https://$service/app/log/private?id=7"
share member2 | json_of | jq -r .message
for _ in $(seq 1 300); do
  status=$(curl -sS --cacert "$cert" "https://$service/gov/recovery" 2>/dev/null \
    | jq -r .service_status 2>/dev/null || true)
  [[ $status == open ]] && break
  sleep 0.1
done
echo "service status: $status"

echo
echo "==> 9.6 every record written before the disaster reads back"
ok=0
for i in $(seq 1 10); do
  [[ $(user "https://$service/app/log/private?id=$i" | jq -r .msg) == "private record $i" ]] && ok=$((ok + 1))
  [[ $(user "https://$service/app/log/public?id=$i" | jq -r .msg) == "public record $i" ]] && ok=$((ok + 1))
done
echo "$ok of 20 records read back"
[[ $ok == 20 ]]
user "https://$service/app/log/private?id=7"
echo
kill "$recover_pid"
wait "$recover_pid" || true
