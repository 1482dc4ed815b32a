#!/usr/bin/env bash
# Runs every test: unit, property and black-box tests, each black-box test against SQLite and against a real
# PostgreSQL that this script starts on loopback and tears down afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
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
