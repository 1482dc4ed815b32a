#!/usr/bin/env bash
# Starts ChromeDriver (Debian's chromium + chromium-driver) on a free loopback port, for browser tests.
#   source scripts/browser.sh && browser_start   -> exports ZCC_CHROMEDRIVER_URL and ZCC_CHROMIUM_BIN;
#   browser_stop tears it down. Installs the two Debian packages if chromium or chromedriver is missing.
# Tests start Chromium themselves through ChromeDriver, headless, with a fresh --user-data-dir each.

browser_start() {
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        echo "browser.sh: installing chromium and chromium-driver" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq chromium chromium-driver >&2 || return 1
    fi
    BROWSER_DIR=$(mktemp -d /tmp/zcc-chromedriver.XXXXXX)
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    chromedriver --port="$port" --allowed-ips=127.0.0.1 >"$BROWSER_DIR/chromedriver.log" 2>&1 &
    BROWSER_PID=$!
    local i
    for i in $(seq 1 100); do
        if python3 - "$port" <<'PY' 2>/dev/null; then break; fi
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/status", timeout=1) as r:
    sys.exit(0 if json.load(r)["value"]["ready"] else 1)
PY
        if ! kill -0 "$BROWSER_PID" 2>/dev/null; then
            cat "$BROWSER_DIR/chromedriver.log" >&2
            return 1
        fi
        sleep 0.1
    done
    [ "$i" -lt 100 ] || { echo "browser.sh: chromedriver did not become ready" >&2; cat "$BROWSER_DIR/chromedriver.log" >&2; return 1; }
    export ZCC_CHROMEDRIVER_URL="http://127.0.0.1:$port"
    export ZCC_CHROMIUM_BIN
    ZCC_CHROMIUM_BIN=$(command -v chromium)
    echo "browser.sh: chromedriver $(chromedriver --version | cut -d' ' -f2) at $ZCC_CHROMEDRIVER_URL ($ZCC_CHROMIUM_BIN)" >&2
}

browser_stop() {
    [ -n "${BROWSER_PID:-}" ] || return 0
    kill "$BROWSER_PID" 2>/dev/null || true
    wait "$BROWSER_PID" 2>/dev/null || true
    rm -rf "$BROWSER_DIR"
    unset BROWSER_PID BROWSER_DIR ZCC_CHROMEDRIVER_URL
}

# Run directly: start ChromeDriver, run the given command with it, stop it.
#   scripts/browser.sh cargo test -p zoom-app --test panel
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    cd "$(dirname "$0")/.."
    trap browser_stop EXIT
    browser_start
    export ZCC_REQUIRE_BROWSER=1
    "$@"
fi
