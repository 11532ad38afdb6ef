"""deploy/ checked offline: every Kubernetes manifest against Kubernetes' own schemas (PyPI
kubernetes-validate, strict: an unknown field fails), every custom resource (ServiceMonitor,
ServingRuntime, InferenceService, InferencePool) against the schemas in deploy/schemas/ with the
pod and container fields it embeds against Kubernetes' PodSpec and Container, the Kustomize
overlays built and checked the same way, and the facts the manifests must agree on: probes on
/v2/health/live|ready, ports that exist, a termination grace (and the systemd unit's stop
timeout) covering the drain and the unload, the HPA's metric served by the adapter rule, and
container args that the real server accepts.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import referencing
import requests
import yaml

from conftest import EXAMPLES, SOURCE_DIR, SluiceServer

DEPLOY = SOURCE_DIR / "deploy"
SCHEMAS = DEPLOY / "schemas"
# The oldest release the manifests target (lifecycle.preStop.sleep) and the newest known.
K8S_VERSIONS = ["1.30.0", "1.37.0"]
SCHEMA_BASE = "https://sluice.example/schemas/"
KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
# Server flags and their defaults (src/server/server_flags.{h,cc}) that bound a shutdown.
SHUTDOWN_FLAGS = {"--exit-timeout-secs": 30, "--model-kill-timeout-secs": 5}


def load_documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def manifest_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*.yaml"))


def all_documents() -> list[tuple[Path, dict]]:
    return [(p, d) for p in manifest_files() for d in load_documents(p)]


def schema_registry() -> referencing.Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text())
        resources.append((schema.get("$id", SCHEMA_BASE + path.name),
                          referencing.Resource.from_contents(schema)))
    return referencing.Registry().with_resources(resources)


def crd_schema_path(doc: dict) -> Path:
    group, _, version = doc["apiVersion"].rpartition("/")
    return SCHEMAS / f"{group}_{version}_{doc['kind'].lower()}.json"


def is_custom(doc: dict) -> bool:
    return "." in doc["apiVersion"].partition("/")[0] and not doc["apiVersion"].startswith(
        ("apps/", "autoscaling/", "batch/", "policy/", "networking.k8s.io/", "rbac.authorization.k8s.io/"))


def validate_builtin(doc: dict) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)


def validate_pod_spec(pod_spec: dict, where: str) -> None:
    """pod_spec as a Pod's spec (strict), so that a misspelt pod or container field fails."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"},
           "spec": {"containers": [], **pod_spec}}
    try:
        validate_builtin(pod)
    except kubernetes_validate.ValidationError as e:
        raise AssertionError(f"{where}: {e.message} at {list(e.path)}") from e


def inline_rest(node: dict, schema_node: dict) -> dict:
    """The keys of node that the custom resource's schema does not name (the inlined fields)."""
    return {k: v for k, v in node.items() if k not in schema_node.get("properties", {})}


def validate_custom(doc: dict, registry: referencing.Registry) -> None:
    path = crd_schema_path(doc)
    assert path.exists(), f"{doc['apiVersion']} {doc['kind']}: no schema {path.name} in deploy/schemas/"
    schema = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "; ".join(f"{list(e.path)}: {e.message}" for e in errors)

    # The fields a custom resource inlines from PodSpec and Container, against Kubernetes'.
    def walk(node, schema_node, where):
        if not isinstance(node, dict) or not isinstance(schema_node, dict):
            return
        if schema_node.get("x-pod-spec-inline"):
            validate_pod_spec(inline_rest(node, schema_node), where)
        if schema_node.get("x-container-inline"):
            container = {"name": "kserve-container", **inline_rest(node, schema_node)}
            validate_pod_spec({"containers": [container]}, where)
        for key, sub in schema_node.get("properties", {}).items():
            if key in node:
                walk(node[key], sub, f"{where}.{key}")

    walk(doc, schema, f"{doc['kind']} {doc['metadata']['name']}")


def strategic_merge(base, patch):
    """Kustomize's strategic merge for what deploy/ patches: maps merge, lists of named maps
    (containers, volumes, volumeMounts, ports) merge by name, other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = strategic_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(x, dict) and "name" in x for x in base + patch)):
        out = [copy.deepcopy(x) for x in base]
        for item in patch:
            match = next((i for i, x in enumerate(out) if x["name"] == item["name"]), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = strategic_merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def kustomize_build(directory: Path) -> list[dict]:
    """The resources of a kustomization: its resources (files or other kustomizations),
    its strategic merge patches applied by kind and name, its labels added."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == KUSTOMIZE_API and kustomization["kind"] == "Kustomization"
    unknown = set(kustomization) - {"apiVersion", "kind", "resources", "patches", "labels"}
    assert not unknown, f"{directory}: kustomization fields this check does not build: {unknown}"
    docs: list[dict] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        assert target.exists(), f"{directory}/kustomization.yaml: resource {entry} does not exist"
        docs += kustomize_build(target) if target.is_dir() else load_documents(target)
    for patch_entry in kustomization.get("patches", []):
        for patch in load_documents(directory / patch_entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"])
            matches = [i for i, d in enumerate(docs) if (d["kind"], d["metadata"]["name"]) == key]
            assert matches, f"{directory}: patch {patch_entry['path']} matches no resource {key}"
            for i in matches:
                docs[i] = strategic_merge(docs[i], patch)
    for label_set in kustomization.get("labels", []):
        for d in docs:
            d.setdefault("metadata", {}).setdefault("labels", {}).update(label_set["pairs"])
    return docs


def kustomizations() -> list[Path]:
    return sorted(p.parent for p in DEPLOY.rglob("kustomization.yaml"))


def flag_values(args: list[str]) -> dict[str, int]:
    """The shutdown flags among a container's args (--flag=value or --flag value)."""
    values = dict(SHUTDOWN_FLAGS)
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if name in SHUTDOWN_FLAGS:
            values[name] = int(value if eq else args[i + 1])
    return values


def sluice_containers(pod_spec: dict) -> list[dict]:
    return [c for c in pod_spec["containers"] if c.get("image", "").startswith("sluice")]


def needed_stop_seconds(container: dict) -> int:
    flags = flag_values(container.get("args", []))
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    return pre_stop + flags["--exit-timeout-secs"] + flags["--model-kill-timeout-secs"]


def deployments() -> list[tuple[str, dict]]:
    out = []
    for directory in kustomizations():
        for d in kustomize_build(directory):
            if d["kind"] == "Deployment":
                out.append((str(directory.relative_to(DEPLOY)), d))
    return out


# ---- schemas ------------------------------------------------------------------------------


def test_every_manifest_is_a_known_kind():
    docs = all_documents()
    assert len(docs) >= 10
    for path, doc in docs:
        assert "apiVersion" in doc and "kind" in doc, f"{path}: not a Kubernetes object"
        if doc["apiVersion"] == KUSTOMIZE_API:
            continue
        if is_custom(doc):
            assert crd_schema_path(doc).exists(), f"{path}: no schema for {doc['apiVersion']} {doc['kind']}"


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_manifest_matches_its_schema(path):
    registry = schema_registry()
    for doc in load_documents(path):
        if doc["apiVersion"] == KUSTOMIZE_API:
            continue
        if path.parent.name == "gpu" and path.name == "gpu.yaml":
            continue  # a patch: checked once applied (test_kustomization_builds_valid_resources)
        if is_custom(doc):
            validate_custom(doc, registry)
        else:
            try:
                validate_builtin(doc)
            except kubernetes_validate.ValidationError as e:
                raise AssertionError(f"{path}: {e.message} at {list(e.path)}") from e


@pytest.mark.parametrize("directory", kustomizations(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_kustomization_builds_valid_resources(directory):
    registry = schema_registry()
    docs = kustomize_build(directory)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "ServiceMonitor", "HorizontalPodAutoscaler"}
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "sluice"
        if is_custom(doc):
            validate_custom(doc, registry)
        else:
            validate_builtin(doc)


def test_gpu_overlay_asks_for_a_gpu_and_keeps_the_probes():
    (_, base), = [(w, d) for w, d in deployments() if w == "kubernetes/base"]
    (_, gpu), = [(w, d) for w, d in deployments() if w == "kubernetes/overlays/gpu"]
    base_c, = sluice_containers(base["spec"]["template"]["spec"])
    gpu_c, = sluice_containers(gpu["spec"]["template"]["spec"])
    assert "nvidia.com/gpu" not in base_c["resources"].get("limits", {})
    assert gpu_c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert gpu_c["readinessProbe"] == base_c["readinessProbe"]
    assert gpu_c["livenessProbe"] == base_c["livenessProbe"]
    mounts = {m["name"] for m in gpu_c["volumeMounts"]}
    assert mounts == {"tmp", "models"}
    assert "--model-repository=/var/lib/sluice/models" in gpu_c["args"]


def test_schemas_reject_broken_resources():
    """Each schema fails what the CRD refuses: no test here can pass on an empty schema."""
    registry = schema_registry()
    by_kind = {d["kind"]: d for _, d in all_documents()}

    def broken(kind, mutate):
        doc = copy.deepcopy(by_kind[kind])
        mutate(doc)
        with pytest.raises(AssertionError):
            validate_custom(doc, registry)

    broken("ServiceMonitor", lambda d: d["spec"].pop("selector"))
    broken("ServiceMonitor", lambda d: d["spec"]["endpoints"][0].update(interval="15 seconds"))
    broken("InferencePool", lambda d: d["spec"]["endpointPickerRef"].pop("port"))  # kind Service
    broken("InferencePool", lambda d: d["spec"].update(targetPorts=[]))
    broken("InferencePool", lambda d: d["spec"]["endpointPickerRef"].update(failureMode="Sometimes"))
    broken("ServingRuntime", lambda d: d["spec"].update(protocolVersions=["v3"]))
    broken("ServingRuntime", lambda d: d["spec"]["containers"][0].update(imagee="x"))  # PodSpec check
    broken("ServingRuntime", lambda d: d["spec"].update(nodeSelektor={}))  # PodSpec check
    broken("InferenceService", lambda d: d["spec"]["predictor"]["model"].pop("modelFormat"))
    broken("InferenceService", lambda d: d["spec"]["predictor"]["model"].update(resourcez={}))
    broken("InferenceService", lambda d: d["spec"]["predictor"].update(terminationGracePeriodSeconds="60"))
    # And an endpoint picker of another kind needs no port.
    ok = copy.deepcopy(by_kind["InferencePool"])
    ok["spec"]["endpointPickerRef"].pop("port")
    ok["spec"]["endpointPickerRef"]["kind"] = "Endpoints"
    validate_custom(ok, registry)


def test_kubernetes_validation_rejects_unknown_fields():
    (_, deployment), *_ = deployments()
    doc = copy.deepcopy(deployment)
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_builtin(doc)


# ---- what the manifests must agree on ---------------------------------------------------------


def test_probes_use_the_kserve_health_routes_on_a_declared_port():
    for where, deployment in deployments():
        container, = sluice_containers(deployment["spec"]["template"]["spec"])
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live", where
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready", where
        assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/live", where
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["port"] in ports, f"{where}: {probe} on an undeclared port"
        assert "--http-address=0.0.0.0" in container["args"], f"{where}: the server would only listen on loopback"
    runtime, = [d for _, d in all_documents() if d["kind"] == "ServingRuntime"]
    container = runtime["spec"]["containers"][0]
    assert "--http-port=8080" in container["args"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": 8080}


def test_termination_grace_covers_drain_and_unload():
    for where, deployment in deployments():
        pod = deployment["spec"]["template"]["spec"]
        container, = sluice_containers(pod)
        assert pod["terminationGracePeriodSeconds"] > needed_stop_seconds(container), where
    isvc, = [d for _, d in all_documents() if d["kind"] == "InferenceService"]
    runtime, = [d for _, d in all_documents() if d["kind"] == "ServingRuntime"]
    assert isvc["spec"]["predictor"]["model"]["runtime"] == runtime["metadata"]["name"]
    assert isvc["spec"]["predictor"]["terminationGracePeriodSeconds"] > needed_stop_seconds(
        runtime["spec"]["containers"][0])


def test_systemd_stop_timeout_covers_drain_and_unload():
    unit = (SOURCE_DIR / "packaging" / "sluice.service").read_text()
    defaults = (SOURCE_DIR / "packaging" / "sluice.default").read_text()
    stop = re.search(r"^TimeoutStopSec=(\d+)s?$", unit, re.M)
    assert stop, "sluice.service has no TimeoutStopSec"
    assert re.search(r"^KillMode=mixed$", unit, re.M), "systemd would SIGTERM the stubs too"
    assert re.search(r"^Restart=on-failure$", unit, re.M)
    assert re.search(r"^ExecStart=/usr/bin/sluice \$SLUICE_ARGS$", unit, re.M)
    args = re.search(r'^SLUICE_ARGS="([^"]*)"$', defaults, re.M)
    assert args, "/etc/default/sluice sets no SLUICE_ARGS"
    flags = flag_values(args.group(1).split())
    assert int(stop.group(1)) > flags["--exit-timeout-secs"] + flags["--model-kill-timeout-secs"]


def test_services_and_monitors_name_ports_that_exist():
    docs = kustomize_build(DEPLOY / "kubernetes" / "base")
    deployment, = [d for d in docs if d["kind"] == "Deployment"]
    service, = [d for d in docs if d["kind"] == "Service"]
    monitor, = [d for d in docs if d["kind"] == "ServiceMonitor"]
    hpa, = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    pool, = [d for _, d in all_documents() if d["kind"] == "InferencePool"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    container, = sluice_containers(deployment["spec"]["template"]["spec"])
    container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}

    assert service["spec"]["selector"].items() <= pod_labels.items()
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in container_ports, port
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in service_ports and endpoint["path"] == "/metrics"
    assert container_ports["metrics"] == 8002
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert [p["number"] for p in pool["spec"]["targetPorts"]] == [container_ports["http"]]


def test_hpa_metric_is_the_adapter_rule_over_a_metric_sluice_exports():
    hpa, = [d for _, d in all_documents() if d["kind"] == "HorizontalPodAutoscaler"]
    adapter, = [d for _, d in all_documents() if d["kind"] == "ConfigMap"
                and d["metadata"]["name"] == "prometheus-adapter-sluice"]
    metric, = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    rule, = [r for r in rules if r["name"]["as"] == metric]
    series = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)\{", rule["seriesQuery"]).group(1)
    assert re.fullmatch(rule["name"]["matches"], series)
    assert series == "vllm:num_requests_waiting"
    # The family the engine renders (src/backends/llm/engine/engine_metrics.cc).
    rendered = (SOURCE_DIR / "src" / "backends" / "llm" / "engine" / "engine_metrics.cc").read_text()
    assert f'"{series}"' in rendered


def test_container_args_are_flags_the_server_takes():
    """The manifests' args, run by the real server (a renamed or misspelt flag fails here): the
    repository swapped for examples/, addresses and ports for loopback and free ports."""
    runtime, = [d for _, d in all_documents() if d["kind"] == "ServingRuntime"]
    cases = [(where, sluice_containers(d["spec"]["template"]["spec"])[0]) for where, d in deployments()]
    cases.append(("kserve/servingruntime.yaml", runtime["spec"]["containers"][0]))
    local = ("--http-address", "--http-port", "--grpc-port", "--metrics-port")
    for where, container in cases:
        args = []
        for arg in container["args"]:
            name = arg.partition("=")[0]
            if name == "--model-repository":
                args.append(f"--model-repository={EXAMPLES}")
            elif name not in local:
                args.append(arg)
        server = SluiceServer([*args, "--cpu-threads", "1"])
        try:
            r = requests.get(f"http://{server.http_url}/v2/health/ready", timeout=10)
            assert r.status_code == 200, f"{where}: {server.log()[-2000:]}"
        finally:
            server.stop()
