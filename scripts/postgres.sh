#!/usr/bin/env bash
# Starts a throw-away PostgreSQL on loopback in a temporary directory, for tests and benchmarks.
#   source scripts/postgres.sh && pg_start   -> exports ZCC_TEST_POSTGRES_URL; pg_stop tears it down.
# Installs Debian's postgresql-15 if no server binaries are found. Runs the server as the `postgres` user
# when invoked as root (initdb refuses root).

pg_find_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
    done
    return 1
}

pg_start() {
    local bin
    if ! bin=$(pg_find_bin); then
        echo "postgres.sh: installing postgresql-15" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 && apt-get install -y -qq postgresql-15 >&2 || return 1
        bin=$(pg_find_bin) || { echo "postgres.sh: no initdb after install" >&2; return 1; }
    fi
    PG_DIR=$(mktemp -d /tmp/zcc-pg.XXXXXX)
    PG_PORT=${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
    local run=()
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PG_DIR" postgres
        chown postgres "$PG_DIR"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -U zcc --auth=trust --locale=C -E UTF8 >"$PG_DIR/initdb.log" 2>&1 \
        || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    # fsync stays on: the benchmarks measure durable commits. PG_EXTRA_OPTS: more server options, e.g. for profiling
    # "-c shared_preload_libraries=pg_stat_statements".
    # PG_CPUS=1 pins the server and every backend it forks to those CPUs (`taskset` list), for benchmarks that
    # measure with the load on other cores.
    local pin=()
    [ -n "${PG_CPUS:-}" ] && pin=(taskset -c "$PG_CPUS")
    "${pin[@]}" "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=400 -c shared_buffers=256MB ${PG_EXTRA_OPTS:-}" start >&2 \
        || { cat "$PG_DIR/server.log" >&2; return 1; }
    PG_CTL=("${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data")
    export ZCC_TEST_POSTGRES_URL="postgres://zcc@127.0.0.1:$PG_PORT/postgres"
    echo "postgres.sh: PostgreSQL running at $ZCC_TEST_POSTGRES_URL" >&2
}

pg_stop() {
    [ -n "${PG_DIR:-}" ] || return 0
    "${PG_CTL[@]}" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
    unset PG_DIR ZCC_TEST_POSTGRES_URL
}
