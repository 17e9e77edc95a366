"""Checks of the deployment files that generic linters cannot make. Run by .ci/lint-deploy.

Each check prints one `ok` or `FAIL` line; the exit status is 1 when any failed. What is
checked, and what is not:

- Kubernetes objects with a built-in kind are validated strictly (unknown fields rejected)
  against the Kubernetes OpenAPI schemas that kubernetes-validate ships, for the oldest and
  the newest version we support: both the files under k8s/ and what `kubectl kustomize`
  renders from k8s/ and from each variant, k8s/sqlite/ and k8s/postgres/ (without kubectl, the
  kustomizations are read by hand: resources and inline patches).
- Each variant's own contract: SQLite runs one pod with its volume and no shutdown delay;
  PostgreSQL runs three replicas rolled out with none unavailable, a PodDisruptionBudget,
  spread over nodes, DATABASE_URL from the Secret, and a shutdown delay longer than its
  readiness probe takes to fail. Both give Kubernetes more grace than delay plus drain.
- ServiceMonitor and PrometheusRule (Prometheus Operator CRDs) have no schema here. They are
  checked by hand: required fields, that the ServiceMonitor selects the client Service and
  names a real port, and that alert rules parse (promtool) and use known metrics. Fields
  outside those are not checked.
- docker-compose.yml is not checked against the Compose schema: only its keys against the
  Compose service keys, and the settings the service relies on; for the `postgres` profile,
  that the replicas reach the db service, outlast HAProxy's checks with their shutdown delay,
  and are what HAProxy balances over.
- deploy/haproxy/haproxy.cfg is checked by `haproxy -c` when HAProxy is installed.
- The Dockerfile is linted by hadolint; here only the service's contract is checked
  (non-root user, exec-form entrypoint, self healthcheck, no baked-in secret).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent

# The metrics the service exports (its contract). Histograms are exposed as _bucket, _sum and
# _count series.
PLAIN_METRICS = {
    "http_requests_total",
    "webhook_requests_total",
    "store_queue_depth",
    "store_queue_capacity",
    "store_commit_failures_total",
    "database_ready",
    "database_size_bytes",
}
HISTOGRAMS = {"request_latency_ms", "store_batch_size", "store_commit_duration_seconds"}
SERVICE_METRICS = PLAIN_METRICS | {
    f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")
}
# Alerts may also use series that Prometheus itself and the kubelet provide.
ALERT_ONLY_METRICS = {
    "up",
    "kubelet_volume_stats_available_bytes",
    "kubelet_volume_stats_capacity_bytes",
}
# What the dashboard must show (the panels the issue asks for).
DASHBOARD_MUST_USE = {
    "webhook_requests_total",
    "request_latency_ms_bucket",
    "http_requests_total",
    "store_queue_depth",
    "store_queue_capacity",
    "store_batch_size_bucket",
    "store_commit_duration_seconds_bucket",
    "database_ready",
    "database_size_bytes",
}

# Oldest Kubernetes release the manifests support, and the newest with bundled schemas.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CRD_GROUP = "monitoring.coreos.com/"

SERVICE_USER = 10001
SHUTDOWN_TIMEOUT_DEFAULT_SECS = 20

# Keys of a Compose service (compose-spec), to catch misspelt keys that Compose would reject.
COMPOSE_SERVICE_KEYS = set(
    """annotations attach blkio_config build cap_add cap_drop cgroup cgroup_parent command
    configs container_name cpu_count cpu_percent cpu_period cpu_quota cpu_rt_period
    cpu_rt_runtime cpu_shares cpus cpuset credential_spec depends_on deploy develop
    device_cgroup_rules devices dns dns_opt dns_search domainname entrypoint env_file
    environment expose extends external_links extra_hosts gpus group_add healthcheck hostname
    image init ipc isolation label_file labels links logging mac_address mem_limit
    mem_reservation mem_swappiness memswap_limit models network_mode networks
    oom_kill_disable oom_score_adj pid pids_limit platform ports post_start pre_stop
    privileged profiles provider pull_policy read_only restart runtime scale secrets
    security_opt shm_size stdin_open stop_grace_period stop_signal storage_opt sysctls tmpfs
    tty ulimits use_api_socket user userns_mode uts volumes volumes_from working_dir""".split()
)
COMPOSE_TOP_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "models"}


class Failed(Exception):
    """A check found a problem; the message says what and where."""


def require(condition: Any, message: str) -> None:
    if not condition:
        raise Failed(message)


# ---------------------------------------------------------------------------------------------
# Helpers


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_yaml_docs(path: Path) -> list[dict]:
    try:
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        raise Failed(f"{rel(path)}: not valid YAML: {e}") from e
    for doc in docs:
        require(isinstance(doc, dict), f"{rel(path)}: a document is not a mapping")
    return docs


def load_yaml(path: Path) -> dict:
    docs = load_yaml_docs(path)
    require(len(docs) == 1, f"{rel(path)}: expected one YAML document, found {len(docs)}")
    return docs[0]


def k8s_objects(directory: Path) -> Iterator[tuple[Path, dict]]:
    """Every Kubernetes object in the YAML files under `directory` (kustomizations excluded)."""
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in load_yaml_docs(path):
            yield path, doc


def name_of(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def find(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [
        o
        for o in objects
        if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
    ]
    require(len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}")
    return found[0]


def validate_builtin(obj: dict, where: str) -> None:
    """Strict schema validation of a built-in kind, for every supported Kubernetes version."""
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            raise Failed(f"{where}: {name_of(obj)} invalid for Kubernetes {version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            raise Failed(f"{where}: {e.message}")


def promql_metrics(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (label names, functions and keywords excluded)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    text = re.sub(r"(?<![\w:])(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[a-z]*", " ", text)  # numbers
    keywords = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
                "and", "or", "unless", "offset", "inf", "nan", "Inf", "NaN"}
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        followed_by_call = re.match(r"\s*\(", text[match.end():])
        if name not in keywords and not followed_by_call:
            names.add(name)
    return names


def grafana_panels(panels: list[dict]) -> Iterator[dict]:
    for panel in panels:
        yield panel
        yield from grafana_panels(panel.get("panels", []))


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    if current:
        joined.append(current)
    result = []
    for line in joined:
        instruction, _, args = line.partition(" ")
        result.append((instruction.upper(), args.strip()))
    return result


def compose() -> dict:
    return load_yaml(ROOT / "docker-compose.yml")


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    require(parts and "".join(n + u for n, u in parts) == duration, f"bad duration {duration!r}")
    for number, unit in parts:
        total += float(number) * units[unit]
    return total


# ---------------------------------------------------------------------------------------------
# Checks. Each returns a short summary of what it saw, or raises Failed.


def check_dockerfile_contract() -> str:
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    froms = [i for i, (ins, _) in enumerate(instructions) if ins == "FROM"]
    require(len(froms) >= 2, "Dockerfile: expected a multi-stage build")
    build, runtime = instructions[: froms[-1]], instructions[froms[-1]:]

    require(
        any(ins == "RUN" and "cargo build --release --locked" in args for ins, args in build),
        "Dockerfile: the build stage must run `cargo build --release --locked`",
    )
    for ins, args in instructions:
        require(
            not (ins in {"ENV", "ARG"} and "WEBHOOK_SECRET" in args),
            "Dockerfile: WEBHOOK_SECRET must not be baked into the image",
        )

    def last(name: str) -> str:
        values = [args for ins, args in runtime if ins == name]
        require(values, f"Dockerfile: the runtime stage has no {name}")
        return values[-1]

    user = last("USER")
    require(
        re.fullmatch(rf"{SERVICE_USER}(:{SERVICE_USER})?", user),
        f"Dockerfile: USER must be {SERVICE_USER}:{SERVICE_USER}, got {user!r}",
    )
    try:
        entrypoint = json.loads(last("ENTRYPOINT"))
    except json.JSONDecodeError:
        raise Failed("Dockerfile: ENTRYPOINT must use the exec (JSON) form") from None
    require(entrypoint == ["webhook-processor"], f"Dockerfile: ENTRYPOINT {entrypoint}")
    healthcheck = last("HEALTHCHECK")
    require(
        re.search(r'CMD \["webhook-processor",\s*"healthcheck"\]$', healthcheck),
        "Dockerfile: HEALTHCHECK must be CMD [\"webhook-processor\", \"healthcheck\"]",
    )
    require(last("EXPOSE") == "8000", "Dockerfile: EXPOSE 8000")
    require(last("STOPSIGNAL") == "SIGTERM", "Dockerfile: STOPSIGNAL SIGTERM")
    env = " ".join(args for ins, args in runtime if ins == "ENV")
    for setting in ("DATABASE_URL=sqlite:////data/app.db", "PORT=8000", "HOST=0.0.0.0"):
        require(setting in env.split(), f"Dockerfile: the runtime ENV must set {setting}")
    require('"/data"' in last("VOLUME") or last("VOLUME") == "/data", "Dockerfile: VOLUME /data")
    return f"user {user}, exec-form entrypoint, self healthcheck"


def check_dockerignore() -> str:
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    require(rules and rules[0] == "*", "must start with `*` (an allow-list)")
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    for needed in ("Cargo.toml", "Cargo.lock", "schema.sql", "src"):
        require(needed in allowed, f"{needed} must be let in (the build needs it)")
    for secret in (".env", "data", "target", ".git"):
        require(secret not in allowed, f"{secret} must stay out of the context")
    return "allow-list: " + ", ".join(sorted(allowed))


def check_k8s_schemas() -> str:
    count = 0
    for path, obj in k8s_objects(ROOT / "k8s"):
        if obj.get("apiVersion", "").startswith(CRD_GROUP):
            continue  # check_monitoring_crds
        validate_builtin(obj, rel(path))
        count += 1
    return f"{count} objects strictly valid for Kubernetes {' and '.join(K8S_VERSIONS)}"


def kustomize(directory: Path) -> list[dict]:
    """The objects `kubectl kustomize` renders; without kubectl, a plain reading of the
    kustomization: its resources (files, or folders read the same way) with its inline patches
    merged in (mappings merged key by key, anything else replaced)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return kustomize_by_hand(directory)
    rendered = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True
    )
    require(rendered.returncode == 0, f"kubectl kustomize {rel(directory)}: {rendered.stderr.strip()}")
    return [d for d in yaml.safe_load_all(rendered.stdout) if d is not None]


def kustomize_by_hand(directory: Path) -> list[dict]:
    kustomization = load_yaml(directory / "kustomization.yaml")
    resources = kustomization.get("resources", [])
    require(resources, f"{rel(directory)}/kustomization.yaml lists no resources")
    objects: list[dict] = []
    for resource in resources:
        path = directory / resource
        if path.is_dir():
            objects.extend(kustomize_by_hand(path))
        else:
            require(path.is_file(), f"{rel(directory)}: {resource} does not exist")
            objects.extend(load_yaml_docs(path))
    for entry in kustomization.get("patches", []):
        require("patch" in entry, f"{rel(directory)}: only inline patches are read without kubectl")
        patch = yaml.safe_load(entry["patch"])
        targets = [o for o in objects if o["kind"] == patch["kind"]
                   and o["metadata"]["name"] == patch["metadata"]["name"]]
        require(len(targets) == 1, f"{rel(directory)}: the patch of {name_of(patch)} matches {len(targets)} objects")
        merge_into(targets[0], patch)
    return objects


def merge_into(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = value


def rendered(variant: str) -> list[dict]:
    """What `k8s/<variant>/` renders, each object strictly valid."""
    objects = kustomize(ROOT / "k8s" / variant)
    for obj in objects:
        validate_builtin(obj, f"kustomize k8s/{variant}")
    return objects


# What each way of applying k8s/ renders. The Secret is created by hand and the extras are
# opt-in: neither may sneak in.
SHARED_OBJECTS = ["ConfigMap/webhook-processor", "Service/webhook-processor"]
VARIANT_OBJECTS = {
    ".": SHARED_OBJECTS + ["Service/webhook-processor-headless", "StatefulSet/webhook-processor"],
    "sqlite": SHARED_OBJECTS + ["Service/webhook-processor-headless", "StatefulSet/webhook-processor"],
    "postgres": SHARED_OBJECTS + ["Deployment/webhook-processor", "PodDisruptionBudget/webhook-processor"],
}


def check_kustomize_variants() -> str:
    seen = []
    for variant, expected in VARIANT_OBJECTS.items():
        kinds = sorted(name_of(o) for o in rendered(variant))
        require(kinds == sorted(expected), f"kustomize k8s/{variant} renders {kinds}, expected {sorted(expected)}")
        seen.append(f"k8s/{variant if variant != '.' else ''}: {len(kinds)} objects")
    how = "kubectl kustomize" if shutil.which("kubectl") else "read by hand (kubectl not found)"
    return f"{how}, strictly valid: " + "; ".join(seen)


def check_kustomize_monitoring() -> str:
    objects = kustomize(ROOT / "k8s" / "monitoring")
    kinds = sorted(o["kind"] for o in objects)
    require(kinds == ["PrometheusRule", "ServiceMonitor"], f"kustomize k8s/monitoring/ renders {kinds}")
    return ", ".join(kinds)


def example_secret() -> dict:
    return find([obj for _, obj in k8s_objects(ROOT / "k8s")], "Secret")


def check_pod_contract(workload: dict, config: dict, secret: dict) -> dict:
    """What every variant's pods must do; returns the container."""
    pod = workload["spec"]["template"]["spec"]
    where = name_of(workload)
    security = pod["securityContext"]
    for key, value in {"runAsNonRoot": True, "runAsUser": SERVICE_USER, "runAsGroup": SERVICE_USER}.items():
        require(security.get(key) == value, f"{where}: pod securityContext.{key} must be {value}")
    require(security.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{where}: seccompProfile RuntimeDefault")

    (container,) = pod["containers"]
    csec = container["securityContext"]
    require(csec.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem must be true")
    require(csec.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation must be false")
    require(csec.get("capabilities", {}).get("drop") == ["ALL"], f"{where}: capabilities must drop ALL")

    port = int(config["data"].get("PORT", 8000))
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    require(ports.get("http") == port, f"{where}: container port 'http' must be PORT ({port})")
    for probe, path in (("startupProbe", None), ("livenessProbe", "/health/live"), ("readinessProbe", "/health/ready")):
        require(probe in container, f"{where}: container has no {probe}")
        if path:
            require(container[probe]["httpGet"]["path"] == path, f"{where}: {probe} must GET {path}")
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            require(resource in container["resources"].get(kind, {}), f"{where}: resources.{kind}.{resource} missing")

    refs = {k: v["name"] for e in container["envFrom"] for k, v in e.items() if k.endswith("Ref")}
    require(refs.get("configMapRef") == config["metadata"]["name"], f"{where}: envFrom must use the ConfigMap")
    require(refs.get("secretRef") == secret["metadata"]["name"], f"{where}: envFrom must use the example Secret's name")
    require("WEBHOOK_SECRET" not in config["data"], "ConfigMap: WEBHOOK_SECRET belongs in the Secret")

    # The stop: not ready for the delay, then the drain; Kubernetes must wait for both.
    delay = int(config["data"].get("SHUTDOWN_DELAY_SECS", 0))
    drain = int(config["data"].get("SHUTDOWN_TIMEOUT_SECS", SHUTDOWN_TIMEOUT_DEFAULT_SECS))
    grace = pod.get("terminationGracePeriodSeconds", 30)
    require(grace > delay + drain,
            f"{where}: terminationGracePeriodSeconds {grace} must exceed SHUTDOWN_DELAY_SECS {delay} "
            f"+ SHUTDOWN_TIMEOUT_SECS {drain}")

    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    require(annotations.get("prometheus.io/scrape") == "true", f"{where}: pod needs prometheus.io/scrape")
    require(annotations.get("prometheus.io/port") == str(port), f"{where}: prometheus.io/port must be PORT")
    return container


def check_client_service(objects: list[dict], workload: dict) -> None:
    client = find(objects, "Service", "webhook-processor")
    require([p["port"] for p in client["spec"]["ports"]] == [8000], "Service must expose port 8000")
    selector = client["spec"]["selector"].items()
    require(selector <= workload["spec"]["template"]["metadata"]["labels"].items(),
            f"Service selector must match the pods of {name_of(workload)}")


def variant(name: str, kind: str) -> tuple[list[dict], dict, dict, dict]:
    """What `k8s/<name>/` renders, its workload of `kind`, its ConfigMap, and the example Secret."""
    objects = rendered(name)
    return objects, find(objects, kind, "webhook-processor"), find(objects, "ConfigMap"), example_secret()


def check_statefulset_contract() -> str:
    objects, sts, config, secret = variant("sqlite", "StatefulSet")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    require(spec["replicas"] == 1, "StatefulSet: replicas must be 1 (SQLite has one writer)")
    governing = find(objects, "Service", spec["serviceName"])
    require(governing["spec"].get("clusterIP") == "None", "StatefulSet: serviceName must be headless")
    require(config["data"].get("DATABASE_URL") == "sqlite:////data/app.db", "ConfigMap: DATABASE_URL")
    require(int(config["data"].get("SHUTDOWN_DELAY_SECS", 0)) == 0,
            "SQLite: SHUTDOWN_DELAY_SECS must be 0 (one pod: a delay only lengthens the rollout gap)")
    require(pod["securityContext"].get("fsGroup") == SERVICE_USER, f"pod securityContext.fsGroup must be {SERVICE_USER}")
    container = check_pod_contract(sts, config, secret)

    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    require(mounts.get(claim["metadata"]["name"]) == "/data", "the volumeClaimTemplate must be mounted at /data")
    check_client_service(objects, sts)

    placeholder = secret.get("stringData", {}).get("WEBHOOK_SECRET", "")
    require("REPLACE" in placeholder.upper(), "the example Secret must hold an obvious placeholder")
    grace = pod.get("terminationGracePeriodSeconds")
    return f"1 replica, grace {grace}s > drain, non-root {SERVICE_USER}, probes, /data claim"


def check_deployment_contract() -> str:
    objects, deployment, config, secret = variant("postgres", "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    require(spec["replicas"] >= 3, "Deployment: at least 3 replicas")
    rolling = spec["strategy"]
    require(rolling["type"] == "RollingUpdate" and rolling["rollingUpdate"].get("maxUnavailable") == 0,
            "Deployment: a rolling update with maxUnavailable 0 (never fewer ready replicas)")
    require("DATABASE_URL" not in config["data"], "ConfigMap: DATABASE_URL holds a password: it belongs in the Secret")
    container = check_pod_contract(deployment, config, secret)
    from_secret = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    reference = from_secret.get("DATABASE_URL", {})
    require(reference.get("name") == secret["metadata"]["name"] and reference.get("key") == "DATABASE_URL",
            "DATABASE_URL must come from the Secret's DATABASE_URL key")
    require(not reference.get("optional"), "DATABASE_URL must not be optional (no silent SQLite fallback)")

    # The replica must be out of every rotation before it stops accepting: the readiness probe
    # fails within period x failureThreshold, and the delay must be longer.
    delay = int(config["data"].get("SHUTDOWN_DELAY_SECS", 0))
    readiness = container["readinessProbe"]
    noticed = readiness.get("periodSeconds", 10) * readiness.get("failureThreshold", 3)
    require(delay > noticed, f"SHUTDOWN_DELAY_SECS {delay} must exceed the readiness probe's {noticed} s to fail")

    spreads = {c["topologyKey"] for c in pod.get("topologySpreadConstraints", [])}
    require("kubernetes.io/hostname" in spreads, "Deployment: spread replicas across nodes")
    pod_labels = spec["template"]["metadata"]["labels"].items()
    for constraint in pod.get("topologySpreadConstraints", []):
        require(constraint["labelSelector"]["matchLabels"].items() <= pod_labels,
                f"topology spread on {constraint['topologyKey']} must select the pods")

    budget = find(objects, "PodDisruptionBudget")
    require(budget["spec"]["selector"]["matchLabels"].items() <= pod_labels, "the PodDisruptionBudget must select the pods")
    allowed_down = budget["spec"].get("maxUnavailable", spec["replicas"] - budget["spec"].get("minAvailable", 0))
    require(allowed_down == 1, "the PodDisruptionBudget must allow one replica down at a time")
    check_client_service(objects, deployment)
    return (f"{spec['replicas']} replicas, maxUnavailable 0, PDB, spread on {sorted(spreads)}, "
            f"DATABASE_URL from the Secret; readiness fails in {noticed}s < delay {delay}s; "
            f"grace {pod['terminationGracePeriodSeconds']}s")


def check_monitoring_crds() -> str:
    objects = [obj for _, obj in k8s_objects(ROOT / "k8s")]
    crds = [o for o in objects if o.get("apiVersion", "").startswith(CRD_GROUP)]
    for obj in crds:
        require(obj["apiVersion"] == CRD_GROUP + "v1", f"{name_of(obj)}: use {CRD_GROUP}v1")
        require(obj.get("metadata", {}).get("name"), f"{name_of(obj)}: metadata.name missing")
        require(obj["kind"] in {"ServiceMonitor", "PrometheusRule"}, f"unexpected CRD kind {obj['kind']}")

    monitor = find(crds, "ServiceMonitor")
    spec = monitor["spec"]
    require(set(spec) <= {"selector", "endpoints", "namespaceSelector", "jobLabel"}, f"ServiceMonitor: unexpected keys {set(spec)}")
    wanted = spec["selector"]["matchLabels"].items()
    services = [o for o in objects if o.get("kind") == "Service" and wanted <= o["metadata"].get("labels", {}).items()]
    require(len(services) == 1, f"ServiceMonitor must select exactly one Service, selects {len(services)}")
    (service,) = services
    port_names = {p.get("name") for p in service["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        require(endpoint.get("port") in port_names, f"ServiceMonitor port {endpoint.get('port')!r} not on {name_of(service)}")
        require(endpoint.get("path", "/metrics") == "/metrics", "ServiceMonitor path must be /metrics")

    rule = find(crds, "PrometheusRule")
    groups = rule["spec"]["groups"]
    sts = find(objects, "StatefulSet")
    pvc = f"{sts['spec']['volumeClaimTemplates'][0]['metadata']['name']}-{sts['metadata']['name']}-0"
    alerts = 0
    for group in groups:
        require(group.get("name") and group.get("rules"), "PrometheusRule: every group needs a name and rules")
        for r in group["rules"]:
            require(isinstance(r.get("expr"), str) and ("alert" in r) != ("record" in r), f"PrometheusRule: bad rule {r}")
            unknown_metrics = promql_metrics(r["expr"]) - SERVICE_METRICS - ALERT_ONLY_METRICS
            require(not unknown_metrics, f"alert {r.get('alert')}: unknown metrics {sorted(unknown_metrics)}")
            for pattern in re.findall(r'persistentvolumeclaim=~"([^"]+)"', r["expr"]):
                require(re.fullmatch(pattern, pvc), f"alert {r.get('alert')}: {pattern!r} does not match PVC {pvc}")
            if "alert" in r:
                alerts += 1
                require(r.get("labels", {}).get("severity") in {"critical", "warning", "info"}, f"{r['alert']}: severity")
                require(r.get("annotations", {}).get("summary"), f"{r['alert']}: annotations.summary missing")
    return f"ServiceMonitor -> {name_of(service)}:{spec['endpoints'][0]['port']}; {alerts} alerts use known metrics"


def check_compose() -> str:
    doc = compose()
    top = {k for k in doc if not k.startswith("x-")}
    require(top <= COMPOSE_TOP_KEYS, f"docker-compose.yml: unknown top-level keys {top - COMPOSE_TOP_KEYS}")
    services = doc["services"]
    expected = {"api", "prometheus", "grafana"} | POSTGRES_PROFILE
    require(set(services) == expected, f"services are {sorted(services)}, expected {sorted(expected)}")
    for name, service in services.items():
        unknown = {k for k in service if k not in COMPOSE_SERVICE_KEYS and not k.startswith("x-")}
        require(not unknown, f"service {name}: unknown keys {sorted(unknown)}")

    api = services["api"]
    require("profiles" not in api, "api must start without a profile")
    require(api.get("build") in (".", {"context": "."}), "api must build from the repository root")
    require(
        api["ports"] == ["${API_BIND_ADDRESS:-127.0.0.1}:8000:8000"],
        "api must publish 8000 on 127.0.0.1 unless API_BIND_ADDRESS says otherwise",
    )
    require("./data:/data" in api["volumes"], "api must mount ./data at /data")
    require(api.get("env_file") in (".env", [".env"]), "api must read env_file .env")
    require(api["healthcheck"]["test"] == ["CMD", "webhook-processor", "healthcheck"], "api healthcheck")
    grace = seconds(api.get("stop_grace_period", "10s"))
    require(grace > SHUTDOWN_TIMEOUT_DEFAULT_SECS, f"api stop_grace_period {grace}s must exceed the drain")
    for name in ("prometheus", "grafana"):
        require(services[name].get("profiles") == ["monitoring"], f"{name} must be in profile monitoring only")

    declared = set(doc.get("volumes") or {})
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                if source != "./data":
                    require((ROOT / source).exists(), f"service {name}: {source} does not exist")
            else:
                require(source in declared, f"service {name}: volume {source} is not declared")
    return "api (default) + prometheus, grafana (profile monitoring) + " \
        f"{', '.join(sorted(POSTGRES_PROFILE))} (profile postgres); mounts exist"


# The services of Compose's `postgres` profile: the database, the replicas, HAProxy.
POSTGRES_REPLICAS = {"replica-1": "REPLICA1", "replica-2": "REPLICA2"}
POSTGRES_PROFILE = {"db", "lb", *POSTGRES_REPLICAS}
HAPROXY_CONFIG = ROOT / "deploy/haproxy/haproxy.cfg"


def haproxy_takes_out_within() -> float:
    """Seconds HAProxy (the example configuration, its default check interval) may take to take
    a replica that answers 503 out of the rotation: `fall` checks `inter` apart, the last one
    allowed `timeout check` to answer."""
    text = HAPROXY_CONFIG.read_text()
    interval = re.search(r'inter "\$\{CHECK_INTERVAL-(\w+)\}"', text)
    fall = re.search(r"^\s*default-server .*\bfall (\d+)", text, re.M)
    check_timeout = re.search(r"^\s*timeout check (\w+)", text, re.M)
    require(interval and fall and check_timeout,
            "haproxy.cfg: expected `inter \"${CHECK_INTERVAL-...}\"`, `fall N` and `timeout check`")
    return int(fall.group(1)) * seconds(interval.group(1)) + seconds(check_timeout.group(1))


def check_compose_postgres() -> str:
    services = compose()["services"]
    for name in POSTGRES_PROFILE:
        require(services[name].get("profiles") == ["postgres"], f"{name} must be in profile postgres only")
    takes_out = haproxy_takes_out_within()
    for name, variable in POSTGRES_REPLICAS.items():
        replica = services[name]
        env = replica["environment"]
        require(re.match(r"postgres://[^@]+@db:5432/", env.get("DATABASE_URL", "")),
                f"{name}: DATABASE_URL must name the db service")
        require(replica["depends_on"]["db"]["condition"] == "service_healthy", f"{name} must wait for db")
        require(replica["healthcheck"]["test"] == ["CMD", "webhook-processor", "healthcheck"], f"{name} healthcheck")
        delay = int(env.get("SHUTDOWN_DELAY_SECS", 0))
        require(delay > takes_out,
                f"{name}: SHUTDOWN_DELAY_SECS {delay} must exceed the {takes_out:g} s HAProxy takes to take it out")
        grace = seconds(replica.get("stop_grace_period", "10s"))
        require(grace > delay + SHUTDOWN_TIMEOUT_DEFAULT_SECS,
                f"{name}: stop_grace_period {grace:g}s must exceed the delay {delay} s and the drain")
        require(services["lb"]["environment"].get(variable) == f"{name}:8000",
                f"lb: {variable} must be {name}:8000")
        require(services["lb"]["depends_on"][name]["condition"] == "service_healthy", f"lb must wait for {name}")
    mounts = dict(v.split(":")[:2] for v in services["lb"]["volumes"])
    require(mounts.get("./deploy/haproxy/haproxy.cfg") == "/usr/local/etc/haproxy/haproxy.cfg",
            "lb must run deploy/haproxy/haproxy.cfg")
    return (f"db, {', '.join(POSTGRES_REPLICAS)} behind lb (deploy/haproxy/haproxy.cfg); delay > "
            f"{takes_out:g} s HAProxy takes to take a replica out")


def check_haproxy_config() -> str:
    """`haproxy -c` on the example, with one, two and three replicas, when HAProxy is here."""
    takes_out = haproxy_takes_out_within()
    haproxy = shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if Path(p).is_file()), None
    )
    if haproxy is None:
        return f"takes a replica out within {takes_out:g} s; `haproxy -c` skipped (HAProxy not installed)"
    for replicas in (1, 2, 3):
        env = {f"REPLICA{n}": f"127.0.0.1:{8000 + n}" for n in range(1, replicas + 1)}
        run = subprocess.run([haproxy, "-c", "-f", str(HAPROXY_CONFIG)], env=env, capture_output=True, text=True)
        require(run.returncode == 0 and "[WARNING]" not in run.stdout + run.stderr,
                f"haproxy -c with {replicas} replicas:\n{run.stdout}{run.stderr}")
    return f"takes a replica out within {takes_out:g} s; `haproxy -c` passes with 1, 2 and 3 replicas"


def check_prometheus_config(promtool: str) -> str:
    path = ROOT / "deploy/prometheus/prometheus.yml"
    config = load_yaml(path)
    targets = [
        (job.get("metrics_path", "/metrics"), target)
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    ]
    require(("/metrics", "api:8000") in targets, "Prometheus must scrape api:8000/metrics")
    if promtool:
        run = subprocess.run([promtool, "check", "config", "--syntax-only", str(path)], capture_output=True, text=True)
        require(run.returncode == 0, f"promtool check config: {run.stdout}{run.stderr}")
        return "scrapes api:8000/metrics; promtool check config passed"
    return "scrapes api:8000/metrics (promtool skipped)"


def datasource_uid() -> str:
    config = load_yaml(ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml")
    (source,) = config["datasources"]
    require(source["type"] == "prometheus", "the provisioned data source must be Prometheus")
    require(source["url"] == "http://prometheus:9090", "the data source must point at the compose prometheus")
    return source["uid"]


def check_grafana_provisioning() -> str:
    uid = datasource_uid()
    provider = load_yaml(ROOT / "deploy/grafana/provisioning/dashboards/webhook-processor.yml")
    (entry,) = provider["providers"]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    require(mounts.get("./deploy/grafana/dashboards") == entry["options"]["path"],
            "the dashboard provider must read the folder Compose mounts deploy/grafana/dashboards at")
    require(mounts.get("./deploy/grafana/provisioning") == "/etc/grafana/provisioning",
            "Compose must mount deploy/grafana/provisioning at /etc/grafana/provisioning")
    return f"data source uid {uid}; dashboards from {entry['options']['path']}"


def dashboard_targets() -> list[tuple[str, str]]:
    path = ROOT / "deploy/grafana/dashboards/webhook-processor.json"
    try:
        dashboard = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise Failed(f"{rel(path)}: invalid JSON: {e}") from e
    uid = datasource_uid()
    require(dashboard.get("uid") and dashboard.get("title"), "dashboard needs a uid and a title")
    panels = list(grafana_panels(dashboard["panels"]))
    ids = [p["id"] for p in panels]
    require(len(ids) == len(set(ids)), "dashboard panel ids must be unique")
    targets = []
    for panel in panels:
        if panel["type"] == "row":
            continue
        require(panel.get("datasource", {}).get("uid") == uid, f"panel {panel['title']!r}: datasource uid must be {uid}")
        require(panel.get("targets"), f"panel {panel['title']!r} has no query")
        for target in panel["targets"]:
            require(target.get("datasource", {}).get("uid") == uid, f"panel {panel['title']!r}: target datasource uid")
            targets.append((panel["title"], target["expr"]))
    return targets


def check_grafana_dashboard() -> str:
    targets = dashboard_targets()
    used: set[str] = set()
    for title, expr in targets:
        metrics = promql_metrics(expr)
        unknown = metrics - SERVICE_METRICS
        require(not unknown, f"panel {title!r}: unknown metrics {sorted(unknown)}")
        used |= metrics
    missing = DASHBOARD_MUST_USE - used
    require(not missing, f"the dashboard does not show {sorted(missing)}")
    return f"{len(targets)} queries over {len(used)} service metrics"


def check_metrics_in_source() -> str:
    sources = "\n".join(p.read_text() for p in sorted((ROOT / "src").rglob("*.rs")))
    missing = sorted(n for n in PLAIN_METRICS | HISTOGRAMS if f'"{n}"' not in sources)
    require(not missing, f"the service no longer registers {missing}: update the dashboards and alerts")
    return f"all {len(PLAIN_METRICS | HISTOGRAMS)} metric names found in src/"


def check_promql(promtool: str) -> str:
    """Parses every alert and every dashboard query with promtool."""
    rule = find([o for _, o in k8s_objects(ROOT / "k8s")], "PrometheusRule")
    dashboard = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{i}",
                        # Grafana's interval variables are not PromQL; any duration parses.
                        "expr": re.sub(r"\$__\w+", "5m", expr),
                    }
                    for i, (_, expr) in enumerate(dashboard_targets())
                ],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as scratch:
        files = []
        for name, content in (("alerts.yml", rule["spec"]), ("dashboard.yml", dashboard)):
            path = Path(scratch) / name
            path.write_text(yaml.safe_dump(content, sort_keys=False))
            files.append(str(path))
        run = subprocess.run([promtool, "check", "rules", *files], capture_output=True, text=True)
        require(run.returncode == 0, f"promtool check rules:\n{run.stdout}{run.stderr}")
    return "alert rules and dashboard queries parse (promtool check rules)"


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--promtool", default="", help="path to promtool; empty skips PromQL parsing")
    args = parser.parse_args()

    checks: list[tuple[str, Callable[[], str]]] = [
        ("dockerfile contract", check_dockerfile_contract),
        (".dockerignore", check_dockerignore),
        ("k8s schemas", check_k8s_schemas),
        ("kustomize k8s/, k8s/sqlite/, k8s/postgres/", check_kustomize_variants),
        ("kustomize k8s/monitoring/", check_kustomize_monitoring),
        ("statefulset contract (SQLite)", check_statefulset_contract),
        ("deployment contract (PostgreSQL)", check_deployment_contract),
        ("monitoring CRDs", check_monitoring_crds),
        ("docker-compose.yml", check_compose),
        ("compose profile postgres", check_compose_postgres),
        ("haproxy example", check_haproxy_config),
        ("prometheus config", lambda: check_prometheus_config(args.promtool)),
        ("grafana provisioning", check_grafana_provisioning),
        ("grafana dashboard", check_grafana_dashboard),
        ("metric names", check_metrics_in_source),
    ]
    if args.promtool:
        checks.append(("promql", lambda: check_promql(args.promtool)))
    else:
        print("skip promql: promtool not given, PromQL is not parsed")

    failed = 0
    for name, check in checks:
        try:
            print(f"ok   {name}: {check()}")
        except Failed as e:
            failed += 1
            print(f"FAIL {name}: {e}")
        except (KeyError, TypeError, ValueError, IndexError) as e:
            failed += 1
            print(f"FAIL {name}: unexpected structure: {type(e).__name__}: {e}")
    if failed:
        print(f"\n{failed} of {len(checks)} checks failed")
        return 1
    print(f"\n{len(checks)} checks, all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
