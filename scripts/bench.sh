#!/usr/bin/env bash
# Runs the ingest benchmark against SQLite and a throw-away PostgreSQL started on loopback, with the load generator
# pinned to core 0 and the server and PostgreSQL pinned to core 1 (see benches/ingest.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/postgres.sh
trap pg_stop EXIT
PG_CPUS=${PG_CPUS:-1} pg_start
export ZCC_BENCH_PG_DATA="$PG_DIR/data"
cargo bench -p zcc-bridge --bench ingest "$@"
