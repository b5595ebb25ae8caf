"""The chart's Qdrant (templates/qdrant/, networkpolicy/qdrant.yaml): the council's memory as a
one-replica StatefulSet with a kept claim, a key from a Secret, Qdrant's own health routes,
a hardened pod that only the gateway may reach; or an external URL and nothing in-cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .helpers import CHART, Obj, annotations_of, env_of, one

SCENARIO = CHART / "ci" / "council-values.yaml"


def _scenario(**changes: Any) -> Obj:
    values: Obj = yaml.safe_load(SCENARIO.read_text(encoding="utf-8"))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = values
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return values


def _qdrant_pod(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "StatefulSet", "-qdrant")["spec"]["template"]["spec"]
    return spec


def _qdrant(objects: list[Obj]) -> Obj:
    (container,) = _qdrant_pod(objects)["containers"]
    return container  # type: ignore[no-any-return]


def _qdrant_objects(objects: list[Obj]) -> list[Obj]:
    return [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "qdrant"
    ]


def test_nothing_of_qdrant_by_default(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    assert _qdrant_objects(objects) == []
    assert not [o for o in objects if o["kind"] == "StatefulSet"]


def test_one_pinned_replica_with_its_governing_headless_service(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(SCENARIO)
    sts = one(objects, "StatefulSet", "-qdrant")
    assert sts["metadata"]["namespace"] == "ai", "explicit namespace"
    assert sts["spec"]["replicas"] == 1
    headless = one(objects, "Service", "-qdrant-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert sts["spec"]["serviceName"] == headless["metadata"]["name"]
    selector = sts["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/component"] == "qdrant"
    assert selector.items() <= sts["spec"]["template"]["metadata"]["labels"].items()
    assert _qdrant(objects)["image"] == "qdrant/qdrant:v1.19.0-unprivileged"


def test_the_service_names_rest_and_grpc(render: Callable[..., list[Obj]]) -> None:
    objects = render(_scenario(qdrant__service={"port": 7333, "grpcPort": 7334}))
    service = one(objects, "Service", "-qdrant")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {"http": (7333, "http"), "grpc": (7334, "grpc")}
    container = {p["name"]: p["containerPort"] for p in _qdrant(objects)["ports"]}
    assert container == {"http": 6333, "grpc": 6334}
    assert service["spec"]["type"] == "ClusterIP"


def test_the_key_comes_from_its_own_secret_and_the_gateway_gets_the_same(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(SCENARIO)
    key = env_of(_qdrant(objects))["QDRANT__SERVICE__API_KEY"]
    assert "value" not in key, "never a plain value"
    assert key["valueFrom"]["secretKeyRef"] == {"name": "archon-qdrant-key", "key": "api-key"}
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(gateway)["ARCHON_QDRANT_API_KEY"]["valueFrom"] == key["valueFrom"]


def test_without_its_own_secret_it_reuses_the_api_key(render: Callable[..., list[Obj]]) -> None:
    objects = render(_scenario(qdrant__apiKey={"existingSecret": "", "key": "api-key"}))
    ref = env_of(_qdrant(objects))["QDRANT__SERVICE__API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "archon-api-key", "key": "api-key"}


def test_without_any_key_only_the_network_policy_guards_it(
    render: Callable[..., list[Obj]], render_error: Callable[..., str]
) -> None:
    open_values = _scenario(
        qdrant__apiKey={"existingSecret": "", "key": "api-key"}, apiKey={"enabled": False}
    )
    objects = render(open_values)
    assert "QDRANT__SERVICE__API_KEY" not in env_of(_qdrant(objects))
    assert one(objects, "NetworkPolicy", "-qdrant")
    err = render_error({**open_values, "networkPolicy": {"enabled": False}})
    assert "qdrant.enabled=true with no API key" in err


def test_the_claim_is_kept_on_uninstall_like_the_model_cache(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(SCENARIO)
    claim = one(objects, "PersistentVolumeClaim", "-qdrant-storage")
    notes = annotations_of(claim)
    assert notes["helm.sh/resource-policy"] == "keep"
    assert notes["argocd.argoproj.io/sync-options"] == "Delete=false,Prune=false"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert claim["spec"]["storageClassName"] == "local-path"
    volumes = {v["name"]: v for v in _qdrant_pod(objects)["volumes"]}
    assert volumes["storage"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    # the model cache is a claim of its own
    assert one(objects, "PersistentVolumeClaim", "-model-cache") is not claim


def test_keep_false_lets_an_uninstall_delete_the_claim(render: Callable[..., list[Obj]]) -> None:
    values = _scenario()
    values["qdrant"]["persistence"]["keep"] = False
    notes = annotations_of(one(render(values), "PersistentVolumeClaim", "-qdrant-storage"))
    assert "helm.sh/resource-policy" not in notes
    assert "argocd.argoproj.io/sync-options" not in notes


def test_an_existing_claim_is_mounted_and_none_created(render: Callable[..., list[Obj]]) -> None:
    values = _scenario()
    values["qdrant"]["persistence"]["existingClaim"] = "my-memory"
    objects = render(values)
    assert not [o for o in _qdrant_objects(objects) if o["kind"] == "PersistentVolumeClaim"]
    volumes = {v["name"]: v for v in _qdrant_pod(objects)["volumes"]}
    assert volumes["storage"]["persistentVolumeClaim"]["claimName"] == "my-memory"


@pytest.mark.parametrize(
    ("council", "refusal"),
    [
        ({"council__enabled": False}, "qdrant.enabled=true with council.enabled=false"),
        ({"council__memory__enabled": False}, "council.memory.enabled=false: only the council"),
    ],
    ids=["council off", "memory off"],
)
def test_a_qdrant_nothing_uses_is_refused(
    render_error: Callable[..., str], council: dict[str, Any], refusal: str
) -> None:
    """Qdrant runs only for the council's memory: without it, its StatefulSet and kept claim
    would hold nothing."""
    assert refusal in render_error(_scenario(**council))


def test_the_store_is_always_a_claim(render_error: Callable[..., str]) -> None:
    """An emptyDir would lose the memory on every restart: there is no value that asks for one."""
    values = _scenario()
    values["qdrant"]["persistence"]["enabled"] = False
    assert "additional properties 'enabled' not allowed" in render_error(values)


def test_probes_use_qdrants_own_health_routes(render: Callable[..., list[Obj]]) -> None:
    container = _qdrant(render(SCENARIO))
    paths = {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/livez", "http"),
        "readinessProbe": ("/readyz", "http"),
    }


def test_the_pod_is_hardened_and_writes_only_to_its_volumes(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(SCENARIO)
    pod = _qdrant_pod(objects)
    container = _qdrant(objects)
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == 1000
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["runAsUser"] == 1000
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/qdrant/storage": "storage", "/qdrant/snapshots": "snapshots", "/tmp": "tmp"}
    env = {name: e.get("value") for name, e in env_of(container).items()}
    assert env["QDRANT__STORAGE__STORAGE_PATH"] == "/qdrant/storage"
    assert env["QDRANT__STORAGE__SNAPSHOTS_PATH"] == "/qdrant/snapshots"
    assert env["QDRANT__TELEMETRY_DISABLED"] == "true"
    init_file = env["QDRANT_INIT_FILE_PATH"]
    assert init_file is not None and init_file.startswith("/tmp/"), "not on the read-only root"


def test_ephemeral_storage_covers_the_scratch_volumes(render: Callable[..., list[Obj]]) -> None:
    values = _scenario(qdrant__snapshotsSizeLimit="3Gi")
    objects = render(values)
    resources = _qdrant(objects)["resources"]
    # snapshots 3Gi + /tmp 1Gi + 1Gi of logs
    assert resources["requests"]["ephemeral-storage"] == "5Gi"
    assert resources["limits"]["ephemeral-storage"] == "5Gi"
    volumes = {v["name"]: v for v in _qdrant_pod(objects)["volumes"]}
    assert volumes["snapshots"]["emptyDir"]["sizeLimit"] == "3Gi"
    own = _scenario()
    own["qdrant"]["resources"] = {
        "requests": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "8Gi"},
        "limits": {"cpu": "2", "memory": "2Gi", "ephemeral-storage": "9Gi"},
    }
    mine = _qdrant(render(own))["resources"]
    assert (mine["requests"]["ephemeral-storage"], mine["limits"]["ephemeral-storage"]) == (
        "8Gi",
        "9Gi",
    )


def _peers(rule: Obj) -> list[set[str]]:
    found: list[set[str]] = []
    peers: list[Obj] = rule.get("from") or rule.get("to") or []
    for peer in peers:
        selector = peer.get("podSelector")
        if selector is None:
            found.append({"<ipBlock>" if "ipBlock" in peer else "<namespace>"})
            continue
        found.append(set(selector["matchExpressions"][0]["values"]))
    return found


def test_only_the_gateway_may_reach_qdrant_and_qdrant_reaches_no_one(
    render: Callable[..., list[Obj]],
) -> None:
    policy = one(render(SCENARIO), "NetworkPolicy", "-qdrant")["spec"]
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "qdrant"
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["ingress"]
    assert _peers(rule) == [{"gateway"}]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
    (dns,) = policy["egress"]
    assert "to" not in dns and {p["port"] for p in dns["ports"]} == {53}


def test_the_gateway_may_reach_the_releases_qdrant(render: Callable[..., list[Obj]]) -> None:
    egress = one(render(SCENARIO), "NetworkPolicy", "-gateway")["spec"]["egress"]
    to_qdrant = [r for r in egress if {"qdrant"} in _peers(r)]
    assert len(to_qdrant) == 1
    assert to_qdrant[0]["ports"] == [{"protocol": "TCP", "port": 6333}]
    without_memory = _scenario(council__memory__enabled=False, qdrant__enabled=False)
    egress = one(render(without_memory), "NetworkPolicy", "-gateway")["spec"]["egress"]
    assert not [r for r in egress if {"qdrant"} in _peers(r)], "no memory, no route"


def test_the_gateways_memory_url_is_the_qdrant_service(render: Callable[..., list[Obj]]) -> None:
    objects = render(_scenario(qdrant__service={"port": 7333, "grpcPort": 7334}))
    council = json.loads(one(objects, "ConfigMap", "-gateway-config")["data"]["council.json"])
    url = urlsplit(council["memory"]["url"])
    service = one(objects, "Service", "-qdrant")["metadata"]["name"]
    assert (url.hostname, url.port) == (service, 7333)


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("https://memory.example.cloud.qdrant.io:6333", 6333),
        ("https://memory.example.org", 443),
        ("http://10.0.0.5", 80),
    ],
)
def test_an_external_qdrant_renders_no_server_and_opens_its_port(
    render: Callable[..., list[Obj]], url: str, port: int
) -> None:
    values = _scenario(qdrant={"enabled": False})
    values["council"]["memory"]["url"] = url
    values["council"]["memory"]["apiKey"] = {"existingSecret": "cloud-qdrant", "key": "token"}
    objects = render(values)
    assert _qdrant_objects(objects) == []
    assert not [o for o in objects if o["kind"] == "StatefulSet"]
    egress = one(objects, "NetworkPolicy", "-gateway")["spec"]["egress"]
    external = [r for r in egress if {"<ipBlock>"} in _peers(r)]
    assert [r["ports"] for r in external] == [[{"protocol": "TCP", "port": port}]]
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    ref = env_of(gateway)["ARCHON_QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "cloud-qdrant", "key": "token"}
    council = json.loads(one(objects, "ConfigMap", "-gateway-config")["data"]["council.json"])
    assert council["memory"]["url"] == url


# --- on the real local cluster ------------------------------------------------------------------

_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts/{name}",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims/{name}",
    "Service": "/api/v1/namespaces/{ns}/services/{name}",
    "StatefulSet": "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies/{name}",
}


@pytest.mark.integration
def test_the_council_scenarios_qdrant_runs_on_the_local_cluster(
    kube: Any, namespace: str, render: Callable[..., list[Obj]]
) -> None:
    """The Qdrant objects of the council scenario, applied as rendered into a namespace that
    enforces Pod Security `restricted`: the StatefulSet's pod is admitted, scheduled and Running
    (kwok plays the kubelet), and its claim is Bound."""
    import time

    kube.create_or_merge(
        "/api/v1/namespaces",
        {
            "metadata": {
                "name": namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        },
    )
    kube.create_or_merge(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"metadata": {"name": "archon-qdrant-key"}, "stringData": {"api-key": "test-key"}},
    )
    objects = render(SCENARIO)
    wanted = _qdrant_objects(objects) + [o for o in objects if o["kind"] == "ServiceAccount"]
    assert {o["kind"] for o in wanted} == set(_PATHS)
    for obj in wanted:
        obj["metadata"]["namespace"] = namespace
        path = _PATHS[obj["kind"]].format(ns=namespace, name=obj["metadata"]["name"])
        kube.apply(path, obj)

    deadline = time.monotonic() + 60
    phase, claim = "", ""
    while time.monotonic() < deadline:
        pods = kube.items(
            f"/api/v1/namespaces/{namespace}/pods",
            labelSelector="app.kubernetes.io/component=qdrant",
        )
        claims = kube.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
        phase = pods[0]["status"].get("phase", "") if pods else ""
        claim = claims[0]["status"].get("phase", "") if claims else ""
        if phase == "Running" and claim == "Bound":
            break
        time.sleep(0.5)
    assert (phase, claim) == ("Running", "Bound")
    sts = kube.get(f"/apis/apps/v1/namespaces/{namespace}/statefulsets/archon-qdrant")
    assert sts["status"].get("replicas") == 1
