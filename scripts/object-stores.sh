#!/usr/bin/env bash
# Starts throw-away object-storage servers on loopback, for tests: an S3-compatible one (moto) and Azure Blob
# Storage's emulator (Azurite, blob service only), both keeping their data in a temporary directory.
#   source scripts/object-stores.sh && objstores_start  -> exports ZCC_TEST_S3_* and ZCC_TEST_AZURE_*;
#   objstores_stop tears both down.
# Installs pinned versions on first use under ${ZCC_TOOLS_DIR:-<repo>/.tools}: moto (PyPI) into a venv, Azurite
# (npm) with `npm install --prefix`; later runs reuse them. Needs python3 and npm; reaches nothing but the
# package registries, and only while installing.

# The venv is the tests' Python toolbox: the S3 server, Azure's SDK (to create the container) and the Standard
# Webhooks reference library (tests verify the HTTP sink's signatures with it; exported as ZCC_TEST_PYTHON).
OBJSTORES_PIP_PKGS=("moto[server]==5.2.5" "azure-storage-blob==12.31.1" "standardwebhooks==1.1.0")
OBJSTORES_AZURITE_PKG=azurite@3.37.0
OBJSTORES_WAIT_SECS=${OBJSTORES_WAIT_SECS:-90}
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
OBJSTORES_AZURE_ACCOUNT=devstoreaccount1
OBJSTORES_AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
OBJSTORES_SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

objstores_tools_dir() {
    echo "${ZCC_TOOLS_DIR:-$OBJSTORES_SCRIPT_DIR/../.tools}"
}

# Creates the moto venv unless the stamp says it already holds exactly OBJSTORES_PIP_PKGS for this python3.
objstores_install_moto() {
    local venv=$1 log=$2 stamp
    stamp="${OBJSTORES_PIP_PKGS[*]} / $(python3 -V 2>&1)"
    if [ -f "$venv/.zcc-stamp" ] && [ "$(cat "$venv/.zcc-stamp")" = "$stamp" ] \
        && "$venv/bin/python" -c '' 2>/dev/null; then
        return 0
    fi
    echo "object-stores.sh: installing ${OBJSTORES_PIP_PKGS[*]} into $venv" >&2
    rm -rf "$venv"
    if python3 -m venv "$venv" >>"$log" 2>&1; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-compile "${OBJSTORES_PIP_PKGS[@]}" \
            >>"$log" 2>&1 || return 1
    else
        # A python3 without ensurepip (Debian's without python3-venv): let the outer pip install into the venv.
        rm -rf "$venv"
        python3 -m venv --without-pip "$venv" >>"$log" 2>&1 || return 1
        python3 -m pip --python "$venv/bin/python" install -q --disable-pip-version-check --no-compile \
            "${OBJSTORES_PIP_PKGS[@]}" >>"$log" 2>&1 || return 1
    fi
    echo "$stamp" >"$venv/.zcc-stamp"
}

objstores_install_azurite() {
    local dir=$1 log=$2
    if [ -f "$dir/.zcc-stamp" ] && [ "$(cat "$dir/.zcc-stamp")" = "$OBJSTORES_AZURITE_PKG" ] \
        && [ -x "$dir/node_modules/.bin/azurite-blob" ]; then
        return 0
    fi
    echo "object-stores.sh: installing $OBJSTORES_AZURITE_PKG into $dir" >&2
    rm -rf "$dir"
    mkdir -p "$dir"
    # Azurite 3.37 declares node >= 22 but its blob service runs on node 20: engine-strict off, whatever npmrc says.
    npm install --prefix "$dir" --no-audit --no-fund --engine-strict=false --loglevel=error "$OBJSTORES_AZURITE_PKG" \
        >>"$log" 2>&1 || return 1
    echo "$OBJSTORES_AZURITE_PKG" >"$dir/.zcc-stamp"
}

# Installs both tools (in parallel) under the tools dir, serialised against concurrent runs by a lock file.
objstores_install() {
    local tools=$1 log=$2 pid rc=0
    mkdir -p "$tools"
    (
        flock 9 2>/dev/null || true
        objstores_install_azurite "$tools/azurite" "$log.npm" &
        pid=$!
        objstores_install_moto "$tools/moto-venv" "$log.pip" || rc=1
        wait "$pid" || rc=1
        exit "$rc"
    ) 9>"$tools/.object-stores.lock" || rc=1
    if [ "$rc" != 0 ]; then
        echo "object-stores.sh: installing the servers failed:" >&2
        tail -n 40 "$log.pip" "$log.npm" >&2 2>/dev/null || true
        return 1
    fi
}

# Prints two distinct free loopback ports.
objstores_free_ports() {
    python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))'
}

objstores_start() {
    local tools venv azurite_dir ports s3_port az_port
    tools=$(objstores_tools_dir)
    mkdir -p "$tools"
    tools=$(cd "$tools" && pwd)
    venv=$tools/moto-venv
    azurite_dir=$tools/azurite
    OBJSTORES_DIR=$(mktemp -d /tmp/zcc-objstores.XXXXXX)
    objstores_install "$tools" "$OBJSTORES_DIR/install.log" || { objstores_stop; return 1; }

    ports=$(objstores_free_ports) || { objstores_stop; return 1; }
    s3_port=${ports% *}
    az_port=${ports#* }

    # The venv is installed with --no-compile (much faster); the servers' first run writes the bytecode of what they
    # import, which PYTHONDONTWRITEBYTECODE would prevent, leaving every later start seconds slower.
    env -u PYTHONDONTWRITEBYTECODE "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$OBJSTORES_DIR/moto.log" 2>&1 &
    OBJSTORES_MOTO_PID=$!
    # --disableTelemetry: Azurite otherwise sends usage data to Microsoft. AZURITE_ACCOUNTS / AZURITE_DB would
    # replace the well-known account or the on-disk metadata store, so they are cleared.
    mkdir "$OBJSTORES_DIR/azurite-data"
    env -u AZURITE_ACCOUNTS -u AZURITE_DB "$azurite_dir/node_modules/.bin/azurite-blob" \
        --blobHost 127.0.0.1 --blobPort "$az_port" --location "$OBJSTORES_DIR/azurite-data" \
        --skipApiVersionCheck --loose --silent --disableTelemetry --disableProductStyleUrl \
        >"$OBJSTORES_DIR/azurite.log" 2>&1 &
    OBJSTORES_AZURITE_PID=$!

    # Waits until both answer HTTP (failing at once if one exits), then creates the bucket and the container.
    if ! env -u PYTHONDONTWRITEBYTECODE "$venv/bin/python" - "$s3_port" "$az_port" "$OBJSTORES_MOTO_PID" \
        "$OBJSTORES_AZURITE_PID" "$OBJSTORES_WAIT_SECS" "$OBJSTORES_AZURE_ACCOUNT" "$OBJSTORES_AZURE_KEY" <<'PY'
import os, sys, time, urllib.error, urllib.request
import boto3  # imported while the servers start
from azure.storage.blob import BlobServiceClient
s3_port, az_port, moto_pid, az_pid, wait_secs = map(int, sys.argv[1:6])
account, key = sys.argv[6:8]
for var in ("NO_PROXY", "no_proxy"):  # never send loopback traffic through a proxy from the environment
    os.environ[var] = ",".join(filter(None, [os.environ.get(var), "127.0.0.1", "localhost"]))
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def answers(url):
    try:
        opener.open(url, timeout=2).close()
    except urllib.error.HTTPError:
        pass  # any HTTP status means the server is up
    except OSError:
        return False
    return True

def wait_for(name, pid, url):
    deadline = time.monotonic() + wait_secs
    while not answers(url):
        try:
            with open(f"/proc/{pid}/stat") as f:
                gone = f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # exited, not yet reaped
        except OSError:
            gone = True
        if gone:
            sys.exit(f"object-stores.sh: {name} exited before answering on {url}")
        if time.monotonic() > deadline:
            sys.exit(f"object-stores.sh: {name} did not answer on {url} within {wait_secs}s")
        time.sleep(0.1)

s3_url = f"http://127.0.0.1:{s3_port}"
az_url = f"http://127.0.0.1:{az_port}/{account}"
wait_for("moto_server", moto_pid, s3_url + "/moto-api/")
wait_for("azurite-blob", az_pid, az_url + "?comp=list")

boto3.client("s3", endpoint_url=s3_url, region_name="us-east-1",
             aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket="zcc-test")
BlobServiceClient(account_url=az_url, credential={"account_name": account, "account_key": key}) \
    .create_container("zcc-test")
PY
    then
        echo "object-stores.sh: servers did not come up; moto log, then azurite log:" >&2
        tail -n 30 "$OBJSTORES_DIR/moto.log" "$OBJSTORES_DIR/azurite.log" >&2 2>/dev/null || true
        objstores_stop
        return 1
    fi

    export ZCC_TEST_PYTHON="$venv/bin/python"
    export ZCC_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
    export ZCC_TEST_S3_BUCKET=zcc-test
    export ZCC_TEST_AZURE_ENDPOINT="http://127.0.0.1:$az_port/$OBJSTORES_AZURE_ACCOUNT"
    export ZCC_TEST_AZURE_CONTAINER=zcc-test
    export ZCC_TEST_AZURE_ACCOUNT=$OBJSTORES_AZURE_ACCOUNT
    export ZCC_TEST_AZURE_KEY=$OBJSTORES_AZURE_KEY
    echo "object-stores.sh: S3 (moto) at $ZCC_TEST_S3_ENDPOINT, Azurite blob at $ZCC_TEST_AZURE_ENDPOINT" >&2
}

objstores_stop() {
    local pid i
    for pid in ${OBJSTORES_MOTO_PID:-} ${OBJSTORES_AZURITE_PID:-}; do
        kill "$pid" 2>/dev/null || continue
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -n "${OBJSTORES_DIR:-}" ] && rm -rf "$OBJSTORES_DIR"
    unset OBJSTORES_DIR OBJSTORES_MOTO_PID OBJSTORES_AZURITE_PID
    unset ZCC_TEST_S3_ENDPOINT ZCC_TEST_S3_BUCKET ZCC_TEST_AZURE_ENDPOINT ZCC_TEST_AZURE_CONTAINER \
        ZCC_TEST_AZURE_ACCOUNT ZCC_TEST_AZURE_KEY
    return 0
}
