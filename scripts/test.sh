#!/usr/bin/env bash
# Runs every test: unit, property and black-box tests, each black-box test against SQLite and against a real
# PostgreSQL that this script starts on loopback and tears down afterwards; then a short fuzzing run of every fuzz
# target (scripts/fuzz.sh, FUZZ_SECONDS each, default 30; ZCC_SKIP_FUZZ=1 skips it). The HTTP API is fuzzed from
# its OpenAPI document against a live demo server (scripts/openapi-fuzz.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# The deployment files (deploy/) checked offline: systemd unit, Dockerfile, compose files, Helm chart, dashboard,
# alert rules (scripts/deploy-check.sh installs its tools on first use).
scripts/deploy-check.sh
source scripts/postgres.sh
source scripts/object-stores.sh
source scripts/browser.sh
trap 'browser_stop; objstores_stop; pg_stop' EXIT
pg_start
objstores_start
browser_start
export ZCC_REQUIRE_POSTGRES=1
export ZCC_REQUIRE_OBJECT_STORES=1
export ZCC_REQUIRE_BROWSER=1
cargo test --workspace --lib --bins --tests --locked "$@"
# The live server fuzzed from its own OpenAPI document (schemathesis from PyPI): no 5xx, every answer as described.
scripts/openapi-fuzz.sh
if [ "${ZCC_SKIP_FUZZ:-0}" != 1 ]; then
    scripts/fuzz.sh
fi
