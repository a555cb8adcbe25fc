#!/usr/bin/env bash
# The heap an idle m365SyncProgress subscription holds, allocation by allocation.
#
# Builds the service with the system allocator (heaptrack sees only malloc), runs `demo` under
# heaptrack, connects Microsoft 365 through the emulator's consent form, opens N idle
# subscriptions (each its own token subject, so the per-token socket cap does not apply), then
# kills the service: what is still allocated at the end ("leaked") is what the idle subscribers
# and the idle service hold. Compare with N=0 for the service alone.
#
#   bash benches/idle_heap/run.sh 2000        # needs heaptrack (apt-get install heaptrack) and node >= 20
set -euo pipefail
N=${1:-2000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d)
cd "$ROOT" && cargo build --release --no-default-features -q
cd "$WORK"
heaptrack -o "$WORK/heap" "$ROOT/target/release/m365-integration" demo > demo.log 2>&1 &
for _ in $(seq 1 60); do grep -q "Press Ctrl-C" demo.log 2>/dev/null && break; sleep 0.5; done
T=$(grep -A1 "Admin token" demo.log | tail -1)
gql() { curl -s -X POST localhost:8080/graphql -H "content-type: application/json" -H "authorization: Bearer $T" -d "$1"; }
START=$(gql '{"query":"mutation { connectM365 { authorizationUrl } }"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["connectM365"]["authorizationUrl"])')
AUTHORIZE=$(curl -s -c jar -b jar -o /dev/null -w "%{redirect_url}" "$START")
curl -s -o consent.html "$AUTHORIZE"
CALLBACK=$(python3 - "$AUTHORIZE" <<'PY'
import html, re, subprocess, sys, urllib.parse
page = open("consent.html").read()
fields = [(k, html.unescape(v)) for k, v in re.findall(r'type="hidden" name="([a-z_]*)" value="([^"]*)"', page)]
form = urllib.parse.urlencode(fields + [("user", "admin@demomsp.com"), ("action", "accept")])
print(subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{redirect_url}", "-X", "POST", sys.argv[1].split("?")[0], "-d", form],
                     capture_output=True, text=True).stdout)
PY
)
curl -s -b jar -o /dev/null "$CALLBACK"
until gql '{"query":"{ m365Integration { sync { state lastRun { status } } } }"}' | grep -q '"IDLE","lastRun":{'; do sleep 0.5; done
SECRET=$(python3 -c 'import json; print(json.load(open("m365-integration-demo.secrets.json"))["auth_jwt_secret"])')
node --experimental-websocket "$ROOT/benches/idle_heap/subscribers.mjs" "$SECRET" "$N" 30 2>/dev/null &
sleep 25
kill -KILL "$(pgrep -f "^$ROOT/target/release/m365-integration demo")"
sleep 3
heaptrack_print -f "$WORK/heap.zst" --print-peaks 0 --print-allocators 0 --print-temporary 0 --print-leaks 1 \
  --print-histogram 0 --print-flamegraph 0 -n 20 2>/dev/null > leaks.txt || true
grep -E "total memory leaked" leaks.txt || heaptrack_print -f "$WORK/heap.zst" 2>/dev/null | grep "total memory leaked"
echo "per-allocation-site breakdown: $WORK/leaks.txt"
