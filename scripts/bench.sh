#!/usr/bin/env bash
# Runs the ingest benchmark against SQLite and a throw-away PostgreSQL started on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
trap pg_stop EXIT
pg_start
cargo bench -p zcc-bridge --bench ingest "$@"
