#!/usr/bin/env bash
# Fuzzes the live server from its own OpenAPI document (GET /api/v1/openapi.json) with schemathesis: the demo
# (server plus the built-in ZCC simulator feeding it, SQLite and local disk in a temporary directory) is started on
# a free loopback port, and every operation is called with generated valid and invalid inputs. Fails on any 5xx,
# any status code, content type, header or body the document does not describe.
#   OPENAPI_FUZZ_EXAMPLES  examples per operation (default 40)
#   ZCC_BRIDGE_BIN         the binary to run (default: build target/debug/zcc-bridge)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv=$PWD/.tools/openapi-venv
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "openapi-fuzz.sh: installing schemathesis==$SCHEMATHESIS_VERSION into $venv (PyPI)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

bin=${ZCC_BRIDGE_BIN:-}
if [ -z "$bin" ]; then
    cargo build --locked --quiet -p zcc-bridge --bin zcc-bridge
    bin=target/debug/zcc-bridge
fi

work=$(mktemp -d /tmp/zcc-openapi-fuzz.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token=openapi-fuzz-admin-token-$RANDOM$RANDOM
base=http://127.0.0.1:$port
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

ZCC_BRIDGE_SERVER__LISTEN=127.0.0.1:$port \
ZCC_BRIDGE_ADMIN__TOKEN=$token \
ZCC_BRIDGE_STORAGE__DATABASE=sqlite://$work/zcc-bridge.db \
ZCC_BRIDGE_STORAGE__MEDIA=file://$work/media \
ZCC_BRIDGE_LOG__LEVEL=warn \
    "$bin" demo --engagements 20 --speedup 600 >"$work/demo.out" 2>"$work/demo.log" &
server_pid=$!
# Python rather than curl: python3 is needed for schemathesis anyway, curl may be absent on a fresh machine.
ready() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base/readyz" 2>/dev/null; }
for _ in $(seq 1 100); do
    ready && break
    sleep 0.2
done
ready || { cat "$work/demo.log" >&2; exit 1; }
# Some records, deliveries and media first, so that reads find something.
sleep 3

started=$(date +%s)
status=0
# The live stream never ends a response by design: it is described, not fuzzed.
# Run from the temporary directory: schemathesis keeps a crash cache in its working directory.
(cd "$work" && "$venv/bin/st" --no-color run "$base/api/v1/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
    --exclude-path /api/v1/stream \
    --max-examples "${OPENAPI_FUZZ_EXAMPLES:-40}" \
    --seed 7 \
    --generation-database none \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check all \
    --report-dir "$work/report") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "openapi-fuzz.sh: the server died during the run" >&2
    status=1
fi
if grep -q "panicked" "$work/demo.log"; then
    echo "openapi-fuzz.sh: the server panicked:" >&2
    grep -A5 "panicked" "$work/demo.log" >&2
    status=1
fi
echo "openapi-fuzz.sh: $(( $(date +%s) - started )) s, exit $status" >&2
exit "$status"
