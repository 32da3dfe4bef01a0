#!/usr/bin/env bash
# `make demo`: the most complete flow the project has today. Writes transactions through
# the real store and ledger, closes and reopens the ledger, verifies it offline without any
# secret, verifies a receipt against the service certificate, and shows that no private
# value reached the disk in clear. Then runs a three-node network (`coffer sandbox`): writes
# through a follower's redirect, commits on a majority, verifies a receipt, kills the leader
# and commits again under the new one. Then the clean room (scripts/demo_cleanroom.sh): three
# banks run a joint AML analysis and hospitals train one model, on a three-node sandbox.
# Finally governance and disaster recovery (scripts/demo_recovery.sh): three members set
# recovery shares at 2 of 3, every node is lost, and two members' shares bring it all back.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/sandbox_lib.sh
source scripts/sandbox_lib.sh
build=${1:-build/release}
coffer="$build/cli/coffer"
# Where the demo writes (replaced on every run); COFFER_DEMO_OUT lets a second build's demo
# run beside the first.
out=${COFFER_DEMO_OUT:-build/demo}

rm -rf "$out"
mkdir -p "$out"

echo "==> 1. write 5,000 transactions (private and public records) and reopen the ledger"
"$coffer" ledger sample --out "$out" --transactions 5000 --signature-interval 100

echo
echo "==> 2. verify every entry, the Merkle chain and every signature (no secrets)"
"$coffer" ledger verify "$out/ledger" --service-cert "$out/service_cert.pem"

echo
echo "==> 3. the first entries: public writes in clear, private parts only as their size"
"$coffer" ledger show "$out/ledger" --limit 3

echo
echo "==> 4. verify a receipt offline with nothing but the service certificate"
"$coffer" receipt verify "$out/receipt.json" --service-cert "$out/service_cert.pem"

echo
echo "==> 5. private values never reach the disk in clear"
public_hits=$(grep -rl "public note 2500" "$out/ledger" | wc -l)
private_hits=$(grep -rl "private payload 2500 of the sample" "$out/ledger" | wc -l || true)
echo "files containing a public record: $public_hits; files containing a private record: $private_hits"
if [[ "$private_hits" != 0 || "$public_hits" == 0 ]]; then
  echo "demo: unexpected result"
  exit 1
fi

echo
echo "==> 6. a flipped byte is found and named"
cp -r "$out/ledger" "$out/ledger-tampered"
chunk=$(ls "$out/ledger-tampered"/ledger_1-* | head -1)
printf '\xff' | dd of="$chunk" bs=1 seek=5000 conv=notrunc status=none
if "$coffer" ledger verify "$out/ledger-tampered"; then
  echo "demo: tampering was not detected"
  exit 1
fi

echo
echo "==> 7. a three-node network (coffer sandbox): write, redirect, commit, receipt, failover"
sb="$out/sandbox"
start_sandbox "$coffer" "$sb" "$out/sandbox.log"
ids="$sb/identities"
cacert="$sb/node0/data/service_cert.pem"
tls=(--silent --show-error --cacert "$cacert" --cert "$ids/user0_cert.pem" --key "$ids/user0_privk.pem")
field() { sed -E "s/.*\"$2\": *\"?([^\",}]*).*/\1/" "$1"; }
port_of() { field "$sb/node$1/data/node_ports.json" client_port; }
pid_of() { field "$sb/node$1/data/node_ports.json" pid; }
leader_index() {
  for i in 0 1 2; do
    if kill -0 "$(pid_of "$i")" 2>/dev/null &&
      curl --silent --max-time 2 --cacert "$cacert" "https://127.0.0.1:$(port_of "$i")/node/state" |
      grep -q '"role":"leader"'; then
      echo "$i"
      return
    fi
  done
}
leader=$(leader_index)
follower=$(( (leader + 1) % 3 ))
echo "node $leader leads; nodes listen on ports $(port_of 0), $(port_of 1), $(port_of 2)"
echo "the sandbox opened the new service with member0's transition_service_to_open proposal:"
curl --silent --show-error --cacert "$cacert" "https://127.0.0.1:$(port_of "$leader")/node/network" |
  grep -o '"service_status":"[a-z_]*"'
furl="https://127.0.0.1:$(port_of "$follower")"
echo "a write sent to follower $follower is redirected to the leader:"
curl "${tls[@]}" -o /dev/null -w '  HTTP %{http_code} -> %{redirect_url}\n' -X POST "$furl/app/log/private" \
  -H 'content-type: application/json' -d '{"id": 0, "msg": "private message 0"}'
for i in $(seq 1 20); do
  curl "${tls[@]}" -L -X POST "$furl/app/log/private" -H 'content-type: application/json' \
    -d "{\"id\": $i, \"msg\": \"private message $i\"}" >/dev/null
done
tx=$(curl "${tls[@]}" -L -X POST "$furl/app/log/public" -H 'content-type: application/json' \
  -d '{"id": 1, "msg": "hello from the demo"}' | sed -E 's/.*"transaction_id": *"([0-9.]+)".*/\1/')
echo "public write accepted as transaction $tx; waiting until a majority holds it:"
curl "${tls[@]}" "$furl/node/tx?transaction_id=$tx&wait_ms=5000"
echo
echo "read back on follower $follower (its committed state):"
for _ in $(seq 1 50); do
  answer=$(curl "${tls[@]}" "$furl/app/log/public?id=1")
  grep -q hello <<<"$answer" && break
  sleep 0.1
done
echo "$answer"
for _ in $(seq 1 100); do
  code=$(curl "${tls[@]}" -o "$out/node-receipt.json" -w '%{http_code}' \
    "$furl/app/receipt?transaction_id=$tx")
  [[ "$code" == 200 ]] && break
  sleep 0.1
done
"$coffer" receipt verify "$out/node-receipt.json" --service-cert "$cacert"
echo "a member may not use the user app (expect 403):"
curl --silent --cacert "$cacert" --cert "$ids/member0_cert.pem" \
  --key "$ids/member0_privk.pem" "$furl/app/log/public?id=1"
echo
echo "kill the leader (node $leader) with SIGKILL; the other two elect a new one and go on:"
killed_at=$(date +%s%N)
kill -KILL "$(pid_of "$leader")"
new_leader=""
for _ in $(seq 1 100); do
  new_leader=$(leader_index)
  [[ -n "$new_leader" && "$new_leader" != "$leader" ]] && break
  sleep 0.1
done
[[ -n "$new_leader" && "$new_leader" != "$leader" ]] || { echo "demo: no new leader"; exit 1; }
lurl="https://127.0.0.1:$(port_of "$new_leader")"
tx2=$(curl "${tls[@]}" -X POST "$lurl/app/log/public" -H 'content-type: application/json' \
  -d '{"id": 2, "msg": "written after the failover"}' | sed -E 's/.*"transaction_id": *"([0-9.]+)".*/\1/')
status=$(curl "${tls[@]}" "$lurl/node/tx?transaction_id=$tx2&wait_ms=5000")
echo "node $new_leader leads; transaction $tx2: $status, $(( ($(date +%s%N) - killed_at) / 1000000 )) ms after the kill"
grep -q Committed <<<"$status" || { echo "demo: no commit after the failover"; exit 1; }
kill -TERM "$sandbox_pid"
wait "$sandbox_pid" || true
trap - EXIT
for i in 0 1 2; do
  "$coffer" ledger verify "$sb/node$i/data/ledger" --service-cert "$cacert"
done
if grep -rq "private message 7" "$sb"/node*/data; then
  echo "demo: a private message reached the disk in clear"
  exit 1
fi
echo
echo "==> 8. the clean room: banks and hospitals compute together without seeing each other's rows"
scripts/demo_cleanroom.sh "$coffer" "$out/cleanroom"
echo
echo "==> 9. governance and disaster recovery: every node lost, the members bring the service back"
scripts/demo_recovery.sh "$coffer" "$out/recovery"
echo
echo "demo finished: see docs/ for what each step proves"
