#!/usr/bin/env python3
"""The checks of scripts/deploy-check.sh (which installs the tools and runs this with them on PATH).

Each check prints one line, PASS or FAIL with the reasons; the exit status is 1 if any failed. Everything runs
offline: the tools were installed from Debian and PyPI beforehand. What cannot be checked here is listed in
docs/operations.md ("What deploy-check.sh checks").
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "zcc-bridge"

# Labels Prometheus adds to every scraped series (the target's), besides the metric's own.
TARGET_LABELS = {"instance", "job"}
PROMQL_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan", "atan2",
}


class Failed(Exception):
    pass


def fail_if(problems):
    if problems:
        raise Failed("\n".join(problems))


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------------------------------------------
# What the server exports and accepts, read from its source.

def _macro_args(text, open_paren):
    """The text between the parenthesis at `open_paren` and its match (strings skipped)."""
    depth, i = 0, open_paren
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return text[open_paren + 1:i]
        i += 1
    raise ValueError(f"unbalanced macro at {open_paren}")


def exported_metrics():
    """name -> {"type": counter|gauge|histogram|summary, "labels": set} from every `metrics::counter!/gauge!/
    histogram!` in the crates' sources (tests and benches excluded). A macro whose name is a variable takes the
    `"zcc_*"` string literals of its file that no literal macro of that file names (the names it is handed)."""
    macro = re.compile(r"metrics::(counter|gauge|histogram)!\s*\(")
    found = {}
    for path in sorted((ROOT / "crates").rglob("*.rs")):
        rel = path.relative_to(ROOT).parts
        if "tests" in rel or "benches" in rel:
            continue
        text = path.read_text()
        literal, dynamic = {}, []
        for m in macro.finditer(text):
            args = _macro_args(text, m.end() - 1)
            first = args.split(",")[0].strip()
            labels = set(re.findall(r'"([a-z_][a-z0-9_]*)"\s*=>', args))
            if first.startswith('"'):
                literal.setdefault(first.strip('"'), []).append((m.group(1), labels))
            else:
                dynamic.append((m.group(1), labels))
        names_in_file = set(re.findall(r'"(zcc_[a-z0-9_]+)"', text))
        for kind, labels in dynamic:
            for name in sorted(names_in_file - set(literal)):
                literal.setdefault(name, []).append((kind, labels))
        for name, uses in literal.items():
            entry = found.setdefault(name, {"types": set(), "labels": set()})
            for kind, labels in uses:
                entry["types"].add(kind)
                entry["labels"] |= labels
    # Histograms whose name ends with a suffix given buckets in telemetry.rs are histograms; the rest summaries.
    telemetry = (ROOT / "crates/zcc-bridge/src/telemetry.rs").read_text()
    bucketed = re.findall(r'Matcher::Suffix\("([a-z_]+)"', telemetry)
    metrics, problems = {}, []
    for name, entry in found.items():
        if len(entry["types"]) != 1:
            problems.append(f"{name} is recorded as {sorted(entry['types'])}")
        kind = min(entry["types"])
        if kind == "histogram" and not any(name.endswith(s) for s in bucketed):
            kind = "summary"
        metrics[name] = {"type": kind, "labels": entry["labels"]}
    if problems:
        raise Failed("metric types disagree in the source: " + "; ".join(problems))
    if len(metrics) < 40:
        raise Failed(f"only {len(metrics)} metrics found in the source: the scan is broken")
    return metrics


def series_names(metrics):
    """Every series name /metrics can show -> (base metric, extra labels that series has)."""
    out = {}
    for name, m in metrics.items():
        if m["type"] == "histogram":
            out[name + "_bucket"] = (name, {"le"})
            out[name + "_sum"] = (name, set())
            out[name + "_count"] = (name, set())
        elif m["type"] == "summary":
            out[name] = (name, {"quantile"})
            out[name + "_sum"] = (name, set())
            out[name + "_count"] = (name, set())
        else:
            out[name] = (name, set())
    return out


def uncommented_example():
    """deploy/config.example.toml with its optional `#key = value` settings switched on (as the config unit test
    does), parsed."""
    lines = []
    for line in (DEPLOY / "config.example.toml").read_text().splitlines():
        if re.match(r'#[\["_a-z]', line):
            line = line[1:]
        lines.append(line)
    return tomllib.loads("\n".join(lines))


def config_paths(tree, prefix=""):
    """Dotted paths of every table and value of a config tree; arrays of tables as `sinks[]`."""
    out = set()
    for k, v in tree.items():
        p = f"{prefix}.{k}" if prefix else k
        out.add(p)
        if isinstance(v, dict):
            out |= config_paths(v, p)
        elif isinstance(v, list) and v and all(isinstance(i, dict) for i in v):
            for item in v:
                out |= config_paths(item, p + "[]")
    return out


_CONFIG_PATHS = None


def known_config_path(path):
    """Whether a dotted key path is a configuration key (user-named tables such as flow.sources.NAME match any
    name)."""
    global _CONFIG_PATHS
    if _CONFIG_PATHS is None:
        _CONFIG_PATHS = config_paths(uncommented_example())
    generic = {re.sub(r"^(flow\.sources|presence\.genesys|presence\.users)\.[^.]+", r"\1.*", p)
               for p in _CONFIG_PATHS}
    path = path.lower()
    return path in _CONFIG_PATHS or re.sub(
        r"^(flow\.sources|presence\.genesys|presence\.users)\.[^.]+", r"\1.*", path) in generic


def env_key_problem(var):
    """None if ZCC_BRIDGE_<SECTION>__<KEY> names a configuration key, else why not."""
    if var == "ZCC_BRIDGE_CONFIG":
        return None
    if not var.startswith("ZCC_BRIDGE_"):
        return None
    path = ".".join(var[len("ZCC_BRIDGE_"):].split("__")).lower()
    if not known_config_path(path):
        return f"{var}: no configuration key {path}"
    return None


# ---------------------------------------------------------------------------------------------------------------
# PromQL: the metric names and labels an expression uses (a tokenizer, not a parser: promtool parses).

def promql_references(expr):
    """(selectors, grouping labels): selectors as (series name, {label names matched}); grouping labels from
    by/without/on/ignoring/group_left/group_right."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)
    text = re.sub(r"#[^\n]*", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    grouping = set()

    def take_grouping(m):
        grouping.update(x.strip() for x in m.group(2).split(",") if x.strip())
        return " "

    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", take_grouping, text)
    selectors = []

    def take_selector(m):
        labels = set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)))
        selectors.append((m.group(1), labels))
        return " "

    text = re.sub(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}", take_selector, text)
    for m in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text):
        word = m.group(1)
        if word.lower() in PROMQL_KEYWORDS:
            continue
        selectors.append((word, set()))
    selectors = [(name, labels) for name, labels in selectors if name]
    return selectors, grouping


def check_promql(where, expr, metrics, series):
    problems = []
    selectors, grouping = promql_references(expr)
    if not selectors:
        problems.append(f"{where}: no metric in {expr!r}")
    available = set(TARGET_LABELS)
    for name, labels in selectors:
        if name not in series:
            problems.append(f"{where}: {name} is not a metric the server exports")
            continue
        base, extra = series[name]
        own = metrics[base]["labels"] | extra | TARGET_LABELS
        available |= own
        for label in labels - own:
            problems.append(f"{where}: {name} has no label {label} (it has {sorted(own)})")
    for label in grouping - available:
        problems.append(f"{where}: grouping by {label}, which none of its metrics has")
    return problems


def promtool_parse(exprs):
    """Parses expressions with Prometheus's own parser: promtool checks them as recording rules."""
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"zcc_check:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump(rules, f)
    try:
        r = run(["promtool", "check", "rules", f.name])
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        out = r.stdout + r.stderr
        # Point at the expressions promtool named.
        named = sorted({int(i) for i in re.findall(r"expr_(\d+)", out)})
        detail = "; ".join(f"{exprs[i]!r}" for i in named if i < len(exprs))
        raise Failed(f"promtool rejects PromQL: {out.strip()}\n{detail}")


# ---------------------------------------------------------------------------------------------------------------
# The checks.

def check_systemd(metrics, series):
    unit = DEPLOY / "zcc-bridge.service"
    text = unit.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            k, v = line.split("=", 1)
            settings.setdefault(k.strip(), []).append(v.strip())
    exec_start = settings["ExecStart"][0].split()[0]
    with tempfile.TemporaryDirectory() as root:
        # systemd-analyze resolves the unit, its dependencies and ExecStart under --root: the system's units, the
        # unit under test, and an executable where ExecStart points (the release binary need not be built).
        shutil.copytree("/usr/lib/systemd/system", f"{root}/usr/lib/systemd/system", symlinks=True)
        os.makedirs(f"{root}/etc/systemd/system")
        shutil.copy(unit, f"{root}/etc/systemd/system/zcc-bridge.service")
        binary = Path(root + exec_start)
        binary.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy("/bin/true", binary)
        verify = run(["systemd-analyze", "verify", "--man=no", f"--root={root}", "zcc-bridge.service"])
        # verify exits 0 on unknown keys and the like, printing them: any output is a failure.
        out = (verify.stdout + verify.stderr).strip()
        security = run(["systemd-analyze", "security", "--offline=yes", f"--root={root}", "--threshold=20",
                        "--no-pager", "zcc-bridge.service"])
    problems = []
    if verify.returncode != 0 or out:
        problems.append(f"systemd-analyze verify: {out or verify.returncode}")
    exposure = re.search(r"Overall exposure level for zcc-bridge.service: ([0-9.]+)", security.stdout)
    if security.returncode != 0 or not exposure:
        problems.append(f"systemd-analyze security: exposure above 2.0 or unreadable:\n{security.stdout[-600:]}")
    required = {
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "DynamicUser": "yes", "CapabilityBoundingSet": "", "Restart": "on-failure",
        "StateDirectory": "zcc-bridge",
    }
    for key, value in required.items():
        if value not in settings.get(key, []):
            problems.append(f"{key}={value} missing")
    for key in ("RestrictAddressFamilies", "SystemCallFilter", "LimitNOFILE", "EnvironmentFile"):
        if key not in settings:
            problems.append(f"{key} missing")
    if "@system-service" not in settings.get("SystemCallFilter", []):
        problems.append("SystemCallFilter=@system-service missing")
    stop = int(settings["TimeoutStopSec"][0])
    shutdown = uncommented_example()["server"]["shutdown_timeout_seconds"]
    if stop <= shutdown:
        problems.append(f"TimeoutStopSec={stop} is not above server.shutdown_timeout_seconds={shutdown}")
    for env in settings.get("Environment", []):
        var = env.split("=", 1)[0]
        if (p := env_key_problem(var)):
            problems.append(p)
    fail_if(problems)
    return f"verify clean, exposure {exposure.group(1)}, TimeoutStopSec {stop} s"


def check_dockerfile(metrics, series):
    dockerfile = DEPLOY / "Dockerfile"
    lint = run(["hadolint", "--failure-threshold", "style", "--no-color", str(dockerfile)])
    problems = []
    if lint.returncode != 0:
        problems.append("hadolint:\n" + (lint.stdout + lint.stderr).strip())
    text = dockerfile.read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", text, re.M | re.I)
    final = re.findall(r"^FROM\s+(\S+)", text, re.M | re.I)[-1]
    if len(stages) < 2:
        problems.append("not a multi-stage build")
    if "distroless" not in final and "slim" not in final:
        problems.append(f"runtime image {final} is neither distroless nor slim")
    for needle in ('cargo build --release --locked -p zcc-bridge', 'ENTRYPOINT ["zcc-bridge"]', 'CMD ["serve"]',
                   "EXPOSE 8080", 'VOLUME ["/data"]', "ZCC_BRIDGE_CONFIG=/etc/zcc-bridge/config.toml",
                   "ZCC_BRIDGE_SERVER__LISTEN=0.0.0.0:8080"):
        if needle not in text:
            problems.append(f"missing: {needle}")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime does not run as a non-root USER")
    for var in re.findall(r"\b(ZCC_BRIDGE_[A-Z0-9_]+)=", text):
        if (p := env_key_problem(var)):
            problems.append(p)

    # The build context: git's files minus .dockerignore (Docker's rules: last matching pattern wins, `!`
    # re-includes, a matched directory excludes what is in it).
    patterns = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = os.path.normpath(line.lstrip("!").lstrip("/"))
        rx = "".join(".*" if part == "**" else
                     re.escape(part).replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
                     for part in re.split(r"(\*\*)", pat))
        patterns.append((negate, re.compile(rx.replace(".*/", "(?:.*/)?") + r"\Z")))

    def ignored(path):
        state = False
        parts = path.split("/")
        for negate, rx in patterns:
            if any(rx.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
                state = not negate
        return state

    # The files of the work tree as git sees them: tracked, and new ones not ignored.
    tracked = run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout.split()
    if not tracked:
        problems.append("git ls-files listed nothing")
    context = {p for p in tracked if not ignored(p)}
    needed = {"Cargo.toml", "Cargo.lock", "LICENSE", "deploy/config.example.toml"}
    needed |= {p for p in tracked if p.startswith("crates/")}
    for src in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s+\S+$", text, re.M):
        if src != ".":
            needed.add(src)
    for path in sorted(needed - context):
        problems.append(f"the build needs {path}, which .dockerignore (or git) leaves out of the context")
    for secret in ("deploy/.env", "deploy/zcc-bridge.env", "target/release/zcc-bridge", ".git/config",
                   "data/zcc-bridge.db", "crates/zcc-bridge/data/zcc-bridge.db", ".tools/x"):
        if not ignored(secret):
            problems.append(f".dockerignore lets {secret} into the build context")
    fail_if(problems)
    return f"hadolint clean, {len(stages)} stages, runtime {final}, context {len(context)} of {len(tracked)} files"


def _interpolations(text):
    """${VAR}, ${VAR:-default}, ${VAR:?message} of a compose file: name -> the operators it is used with
    ("" for a bare ${VAR})."""
    out = {}
    for name, op in re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[-?+])?", text):
        out.setdefault(name, set()).add(op)
    return out


def _read_env_file(path):
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("#"):
            line = line.lstrip("#").strip()
            if not re.match(r"[A-Z_][A-Z0-9_]*=", line):
                continue
        if "=" in line:
            k, v = line.split("=", 1)
            values[k.strip()] = v
    return values


def check_compose(metrics, series):
    files = [DEPLOY / "compose.yaml", DEPLOY / "compose.replicas.yaml"]
    schema = run(["check-jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, files)])
    problems = []
    if schema.returncode != 0:
        problems.append("Compose Specification schema:\n" + (schema.stdout + schema.stderr).strip())
    dotenv = _read_env_file(DEPLOY / ".env.example")
    app_env = _read_env_file(DEPLOY / "zcc-bridge.env.example")
    for var in app_env:
        if (p := env_key_problem(var)):
            problems.append(f"zcc-bridge.env.example: {p}")
    shutdown = uncommented_example()["server"]["shutdown_timeout_seconds"]
    for f in files:
        text = f.read_text()
        doc = yaml.safe_load(text)
        for var, ops in _interpolations(text).items():
            if var not in dotenv:
                problems.append(f"{f.name}: ${{{var}}} is not in deploy/.env.example")
            if "" in ops or "-" in ops:
                # Without a default or a `:?` refusal, a missing value would silently be empty.
                problems.append(f"{f.name}: ${{{var}}} needs a default (:-) or a refusal (:?)")
        services = doc["services"]
        volumes = set((doc.get("volumes") or {}).keys())
        for name, svc in services.items():
            for dep in (svc.get("depends_on") or []):
                if dep not in services:
                    problems.append(f"{f.name}: {name} depends on unknown service {dep}")
            for env_file in svc.get("env_file") or []:
                env_file = env_file["path"] if isinstance(env_file, dict) else env_file
                if not (f.parent / (env_file + ".example")).is_file():
                    problems.append(f"{f.name}: {name}: env_file {env_file} has no {env_file}.example template")
            for mount in svc.get("volumes") or []:
                source = mount.split(":")[0] if isinstance(mount, str) else mount.get("source", "")
                if source.startswith((".", "/")):
                    if not (f.parent / source).exists():
                        problems.append(f"{f.name}: {name} mounts {source}, which does not exist")
                elif source and source not in volumes:
                    problems.append(f"{f.name}: {name} uses undeclared volume {source}")
            build = svc.get("build")
            if build:
                ctx = f.parent / build["context"]
                if not (ctx / build["dockerfile"]).is_file():
                    problems.append(f"{f.name}: {name}: no {build['dockerfile']} in {ctx}")
            env = svc.get("environment") or {}
            for var in (env if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]):
                if (p := env_key_problem(var)):
                    problems.append(f"{f.name}: {name}: {p}")
            if name.startswith("zcc-bridge"):
                grace = svc.get("stop_grace_period", "10s")
                if int(grace.rstrip("s")) <= shutdown:
                    problems.append(f"{f.name}: {name}: stop_grace_period {grace} is not above "
                                    f"server.shutdown_timeout_seconds {shutdown}")
                if not svc.get("read_only"):
                    problems.append(f"{f.name}: {name}: root file system not read-only")
    replicated = yaml.safe_load((DEPLOY / "compose.replicas.yaml").read_text())
    bridges = [n for n in replicated["services"] if n.startswith("zcc-bridge")]
    if len(bridges) < 2:
        problems.append("compose.replicas.yaml runs fewer than two replicas")
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    for b in bridges:
        if f"{b}:8080" not in caddyfile:
            problems.append(f"Caddyfile does not proxy to {b}")
    for b in bridges:
        env = replicated["services"][b]["environment"]
        if not env.get("ZCC_BRIDGE_STORAGE__DATABASE", "").startswith("postgres://"):
            problems.append(f"{b}: replicas need PostgreSQL")
        if not env.get("ZCC_BRIDGE_STORAGE__MEDIA", "").startswith("s3://"):
            problems.append(f"{b}: replicas need a shared archive")
    caddy = run(["caddy", "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"])
    if caddy.returncode != 0:
        problems.append("caddy validate:\n" + caddy.stderr.strip()[-1500:])
    fmt = run(["caddy", "fmt", str(DEPLOY / "Caddyfile")])
    if fmt.returncode != 0 or fmt.stdout.rstrip("\n") != caddyfile.rstrip("\n"):
        problems.append("Caddyfile is not as `caddy fmt` formats it")
    fail_if(problems)
    return f"schema ok (2 files), {len(bridges)} replicas behind Caddy (caddy validate ok)"


def check_helm(metrics, series):
    import helm_python as helm
    import kubernetes_validate

    problems = []
    report = helm.lint(str(CHART), strict=True)
    if report.get("errors"):
        problems.append(f"helm lint --strict: {report['errors']}")
    scenarios = {"defaults": {}}
    for f in sorted((CHART / "ci").glob("*-values.yaml")):
        scenarios[f.name] = yaml.safe_load(f.read_text()) or {}
    refused = {
        "two replicas on SQLite": ({"replicaCount": 2}, "need database.kind: postgres"),
        "postgres without its Secret": ({"database": {"kind": "postgres"}}, "database.postgres.existingSecret"),
        "two replicas, local archive": (
            {"replicaCount": 2, "database": {"kind": "postgres", "postgres": {"existingSecret": "db"}}},
            "shared archive"),
        "local archive on an emptyDir": (
            {"database": {"kind": "postgres", "postgres": {"existingSecret": "db"}}, "persistence": {"enabled": False}},
            "would be lost"),
        "admin token in the ConfigMap": ({"config": {"admin": {"token": "0123456789abcdef0123"}}}, "is a secret"),
        "sink secret in the ConfigMap": (
            {"config": {"sinks": [{"name": "a", "kind": "http", "url": "https://example.com",
                                   "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}]}}, "is a secret"),
        "unknown database kind": ({"database": {"kind": "mysql"}}, "database/kind"),
        "unknown config section": ({"config": {"sever": {"listen": "x"}}}, "sever"),
    }
    kube_versions = sorted({p.name.split("-")[0][1:] for p in (
        Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema").iterdir()},
        key=lambda v: tuple(map(int, v.split("."))))
    targets = [v for v in kube_versions if v.startswith("1.25.")][:1] + kube_versions[-1:]
    rendered_kinds = set()
    with helm.Chart.load(str(CHART)) as chart:
        for name, values in scenarios.items():
            try:
                chart.validate_schema(values)
                out = chart.render(values, name="zcc", namespace="zcc")
            except Exception as e:  # noqa: BLE001 - any refusal is a failure here
                problems.append(f"{name}: does not render: {e}")
                continue
            merged = chart.merge_values(values)
            docs = [d for path, text in out.items() if path.endswith(".yaml")
                    for d in yaml.safe_load_all(text) if d]
            problems += [f"{name}: {p}" for p in _check_manifests(docs, merged, targets, kubernetes_validate)]
            rendered_kinds |= {d["kind"] for d in docs}
        for name, (values, expected) in refused.items():
            try:
                chart.validate_schema(values)
                chart.render(values, name="zcc", namespace="zcc")
                problems.append(f"{name}: rendered, but must be refused")
            except Exception as e:  # noqa: BLE001
                if expected not in str(e):
                    problems.append(f"{name}: refused for another reason: {e}")
    for kind in ("Deployment", "Service", "ConfigMap", "PersistentVolumeClaim", "Ingress", "PodDisruptionBudget",
                 "ServiceMonitor", "ServiceAccount"):
        if kind not in rendered_kinds:
            problems.append(f"no scenario renders a {kind}")
    fail_if(problems)
    return (f"helm lint ok; {len(scenarios)} value sets rendered and valid against Kubernetes "
            f"{' and '.join(targets)}; {len(refused)} bad ones refused")


def _check_manifests(docs, values, kube_versions, kubernetes_validate):
    problems = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        if d["apiVersion"].startswith("monitoring.coreos.com/"):
            # A CRD: no schema here; its required shape only.
            ep = d["spec"]["endpoints"][0]
            if ep.get("port") != "http" or ep.get("path") != "/metrics" or not d["spec"]["selector"]["matchLabels"]:
                problems.append(f"ServiceMonitor endpoint or selector wrong: {d['spec']}")
            continue
        for version in kube_versions:
            try:
                kubernetes_validate.validate(d, version, strict=True)
            except Exception as e:  # noqa: BLE001
                problems.append(f"{d['kind']} {d['metadata']['name']} invalid for Kubernetes {version}: {e}")
    deployment = by_kind["Deployment"][0]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    replicas = deployment["spec"]["replicas"]
    kind = values["database"]["kind"]
    strategy = deployment["spec"]["strategy"]["type"]
    if (kind == "sqlite") != (strategy == "Recreate"):
        problems.append(f"{kind} with strategy {strategy}")
    if replicas > 1 and kind != "postgres":
        problems.append("several replicas on SQLite rendered")
    probes = {p: container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    if probes != {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}:
        problems.append(f"probes: {probes}")
    sc = container["securityContext"]
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and pod["securityContext"].get("runAsNonRoot")):
        problems.append("not non-root with a read-only root file system")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    if not {"/tmp", "/data", "/etc/zcc-bridge"} <= mounts:
        problems.append(f"mounts: {sorted(mounts)}")
    shutdown = int((values.get("config") or {}).get("server", {}).get("shutdown_timeout_seconds", 30))
    if pod["terminationGracePeriodSeconds"] <= shutdown:
        problems.append(f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} <= {shutdown}")
    env = {e["name"]: e for e in container["env"]}
    for var in env:
        if (p := env_key_problem(var)):
            problems.append(p)
    if env["ZCC_BRIDGE_SERVER__LISTEN"]["value"] != f"0.0.0.0:{container['ports'][0]['containerPort']}":
        problems.append("ZCC_BRIDGE_SERVER__LISTEN does not listen on 0.0.0.0:<containerPort>")
    if "PodDisruptionBudget" in by_kind and replicas < 2:
        problems.append("a PodDisruptionBudget for a single replica blocks node drains")
    for cm in by_kind.get("ConfigMap", []):
        try:
            config = tomllib.loads(cm["data"]["config.toml"])
        except tomllib.TOMLDecodeError as e:
            problems.append(f"config.toml of the ConfigMap is not TOML: {e}")
            continue
        for path in sorted(config_paths(config)):
            if not known_config_path(re.sub(r"\[\]", "[]", path)):
                problems.append(f"config.toml of the ConfigMap sets unknown key {path}")
        example = uncommented_example()
        for section, table in config.items():
            for key, value in (table.items() if isinstance(table, dict) else []):
                default = example.get(section, {}).get(key)
                if default is not None and type(default) is not type(value) and not (
                        isinstance(default, float) and isinstance(value, int)):
                    problems.append(f"config.toml: {section}.{key} = {value!r} is not a "
                                    f"{type(default).__name__} like the example's {default!r}")
    return problems


def check_grafana(metrics, series):
    path = DEPLOY / "grafana" / "zcc-bridge.json"
    dashboard = json.loads(path.read_text())
    problems = []
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    if variables.get("datasource", {}).get("query") != "prometheus":
        problems.append("no Prometheus data source variable")
    panels = []
    for p in dashboard["panels"]:
        panels.append(p)
        panels.extend(p.get("panels", []))
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        problems.append("panel ids repeat")
    occupied = {}
    exprs = []
    for p in panels:
        g = p["gridPos"]
        if g["x"] < 0 or g["w"] < 1 or g["x"] + g["w"] > 24:
            problems.append(f"panel {p['title']!r} is outside the 24-column grid")
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        overlapping = {occupied[c] for c in cells if c in occupied}
        if overlapping:
            problems.append(f"panel {p['title']!r} overlaps {sorted(overlapping)}")
        occupied.update((c, p["title"]) for c in cells)
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"panel {p['title']!r} does not use the data source variable")
        if not p.get("targets"):
            problems.append(f"panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            exprs.append((p["title"], t["expr"]))
    for name, v in variables.items():
        if v["type"] == "query":
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", v["query"]["query"])
            if not m:
                problems.append(f"variable {name}: unexpected query {v['query']['query']}")
                continue
            problems += check_promql(f"variable {name}", f"{m.group(1)}{{{m.group(2)}!=\"\"}}", metrics, series)
    used = set()
    for title, expr in exprs:
        used |= set(re.findall(r"\$(\w+)", expr)) - {"__rate_interval", "__interval", "__range"}
        problems += check_promql(f"panel {title!r}", expr, metrics, series)
    for name in used - set(variables):
        problems.append(f"${name} is used but not defined")
    concrete = [re.sub(r"\$__(rate_interval|interval|range)", "5m", e) for _, e in exprs]
    concrete = [re.sub(r"\$\w+", ".*", e) for e in concrete]
    try:
        promtool_parse(concrete)
    except Failed as e:
        problems.append(str(e))
    covered = {name for _, e in exprs for name, _ in promql_references(e)[0]}
    covered = {series[n][0] for n in covered if n in series}
    listed = set(re.findall(r"`(zcc_[a-z0-9_]+)", (ROOT / "README.md").read_text()))
    missing = sorted(n for n in listed & set(metrics) - covered)
    if missing:
        problems.append(f"README metrics no panel shows: {missing}")
    fail_if(problems)
    return f"{len(panels)} panels, {len(exprs)} queries over {len(covered)} metrics, PromQL parsed by promtool"


def check_prometheus(metrics, series):
    rules_path = DEPLOY / "prometheus" / "alerts.yml"
    tests_path = DEPLOY / "prometheus" / "alerts.test.yml"
    problems = []
    r = run(["promtool", "check", "rules", str(rules_path)])
    if r.returncode != 0:
        problems.append("promtool check rules:\n" + (r.stdout + r.stderr).strip())
    r = run(["promtool", "test", "rules", str(tests_path)], cwd=tests_path.parent)
    if r.returncode != 0:
        problems.append("promtool test rules:\n" + (r.stdout + r.stderr).strip()[-3000:])
    rules = yaml.safe_load(rules_path.read_text())
    alerts = [rule for g in rules["groups"] for rule in g["rules"]]
    for rule in alerts:
        problems += check_promql(f"alert {rule['alert']}", rule["expr"], metrics, series)
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"alert {rule['alert']}: severity label missing")
    tests = yaml.safe_load(tests_path.read_text())
    firing = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    for rule in alerts:
        if rule["alert"] not in firing:
            problems.append(f"alert {rule['alert']}: no test shows it firing")
    names = {rule["alert"] for rule in alerts}
    wanted = {"ZccWebhooksRefused", "ZccWebhooksFailing", "ZccProjectionBacklogGrowing", "ZccDeliveryDeadLetters",
              "ZccDeliveryOldestPendingTooOld", "ZccMediaDeadFiles", "ZccReconcileNotSucceeding",
              "ZccWebsocketDisconnected", "ZccPresenceWritesFailing"}
    for name in sorted(wanted - names):
        problems.append(f"alert {name} is missing")
    fail_if(problems)
    return f"{len(alerts)} alerts: promtool check and {len(tests['tests'])} unit tests pass, every alert fires in one"


def check_docs(metrics, series):
    problems = []
    license_text = (ROOT / "LICENSE").read_text()
    reference = Path("/usr/share/common-licenses/Apache-2.0")
    if reference.is_file():
        if license_text != reference.read_text():
            problems.append("LICENSE differs from the Apache License 2.0 text (/usr/share/common-licenses)")
    elif "Apache License" not in license_text or "Version 2.0, January 2004" not in license_text:
        problems.append("LICENSE is not the Apache License 2.0")
    if not re.search(r'^license(\.workspace)?\s*=\s*"Apache-2.0"', (ROOT / "Cargo.toml").read_text(), re.M):
        problems.append("Cargo.toml does not declare Apache-2.0")
    changelog = (ROOT / "CHANGELOG.md").read_text()
    if not changelog.startswith("# Changelog") or "keepachangelog.com" not in changelog:
        problems.append("CHANGELOG.md does not follow Keep a Changelog")
    versions = re.findall(r"^## \[([^\]]+)\]", changelog, re.M)
    if not versions or versions[0] not in ("Unreleased", "0.1.0"):
        problems.append(f"CHANGELOG.md versions: {versions}")
    for heading in re.findall(r"^### (.+)$", changelog, re.M):
        if heading not in ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"):
            problems.append(f"CHANGELOG.md: section {heading!r} is not a Keep a Changelog type")
    operations = (ROOT / "docs" / "operations.md").read_text()
    for f in sorted(DEPLOY.rglob("*")):
        if f.is_file() and not f.name.endswith((".env",)) and f.name != ".env":
            rel = f.relative_to(ROOT)
            if rel.parts[:3] == ("deploy", "helm", "zcc-bridge") and len(rel.parts) > 3:
                rel = Path(*rel.parts[:3])
            if str(rel) not in operations:
                problems.append(f"docs/operations.md does not mention {rel}")
    readme = (ROOT / "README.md").read_text()
    for link in ("docs/operations.md", "CHANGELOG.md", "LICENSE"):
        if f"]({link})" not in readme:
            problems.append(f"README.md does not link {link}")
    for command in ("cargo run --release -p zcc-bridge -- demo", "scripts/test.sh"):
        if command not in readme:
            problems.append(f"README.md lost `{command}`")
    for f in (ROOT / "docs" / "operations.md", ROOT / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", f.read_text()):
            if not (f.parent / target).exists():
                problems.append(f"{f.relative_to(ROOT)} links to missing {target}")
    fail_if(problems)
    return "LICENSE is Apache-2.0 verbatim, CHANGELOG structure, operations.md covers every deploy/ file, links"


CHECKS = [
    ("systemd unit", check_systemd),
    ("Dockerfile and build context", check_dockerfile),
    ("compose files and Caddyfile", check_compose),
    ("Helm chart", check_helm),
    ("Grafana dashboard", check_grafana),
    ("Prometheus alert rules", check_prometheus),
    ("licence, changelog, docs", check_docs),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help="run only the checks whose name contains one of these words")
    args = parser.parse_args()
    started = time.monotonic()
    try:
        metrics = exported_metrics()
        series = series_names(metrics)
    except Failed as e:
        print(f"FAIL  metric scan: {e}")
        return 1
    print(f"      {len(metrics)} metrics exported by the server (scanned from crates/*/src)")
    failed = 0
    for name, check in CHECKS:
        if args.only and not any(w.lower() in name.lower() for w in args.only):
            continue
        t = time.monotonic()
        try:
            detail = check(metrics, series)
            print(f"PASS  {name}: {detail} ({time.monotonic() - t:.1f} s)")
        except Exception as e:  # noqa: BLE001 - a check that breaks is a failed check
            failed += 1
            reason = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
            print(f"FAIL  {name} ({time.monotonic() - t:.1f} s):")
            for line in reason.splitlines():
                print(f"        {line}")
    total = sum(1 for n, _ in CHECKS if not args.only or any(w.lower() in n.lower() for w in args.only))
    print(f"      {time.monotonic() - started:.1f} s")
    print(f"deploy-check: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
