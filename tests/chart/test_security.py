"""Closed by default: the API key, refusals of unauthenticated exposure, NetworkPolicies, image
digests, the read-only model cache, ephemeral storage and explicit namespaces."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import (
    CHART,
    PROFILES,
    SCENARIOS,
    Obj,
    annotations_of,
    container,
    env_of,
    one,
    pod_spec,
)

HOOK = "pre-install,pre-upgrade"
LAN: Obj = {"enabled": False, "allowUnauthenticatedExposure": True}


def _hook_objects(objects: list[Obj]) -> dict[str, Obj]:
    return {o["kind"]: o for o in objects if annotations_of(o).get("helm.sh/hook") == HOOK}


# --- the API key ------------------------------------------------------------------------------


def test_the_key_is_on_by_default_and_created_once_by_a_hook(
    render: Callable[..., list[Obj]], render_text: Callable[..., str]
) -> None:
    objects = render()
    key = env_of(container(objects))["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert key == {"name": "archon-api-key", "key": "api-key"}
    hooks = _hook_objects(objects)
    assert set(hooks) == {"ServiceAccount", "Role", "RoleBinding", "NetworkPolicy", "Job"}
    weights = {k: int(annotations_of(o)["helm.sh/hook-weight"]) for k, o in hooks.items()}
    assert max(w for k, w in weights.items() if k != "Job") < weights["Job"]
    # least privilege: read the one Secret, create Secrets; nothing else
    assert hooks["Role"]["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["archon-api-key"],
            "verbs": ["get"],
        },
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
    ]
    job = hooks["Job"]["spec"]["template"]["spec"]
    assert job["serviceAccountName"] == hooks["ServiceAccount"]["metadata"]["name"]
    assert job["automountServiceAccountToken"] is True
    env = env_of(job["containers"][0])
    assert env["ARCHON_SECRET"]["value"] == "archon-api-key"
    assert env["ARCHON_SECRET_KEY"]["value"] == "api-key"
    # nothing random at render time: ArgoCD would see drift on every sync
    assert render_text() == render_text()
    assert "Secret" not in {o["kind"] for o in objects}


def test_an_existing_secret_needs_no_hook(render: Callable[..., list[Obj]]) -> None:
    objects = render({"apiKey": {"existingSecret": "mine", "key": "token"}})
    assert not _hook_objects(objects)
    key = env_of(container(objects))["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]
    assert key == {"name": "mine", "key": "token"}
    assert not _hook_objects(render({"apiKey": {"enabled": False}}))


def test_the_gateway_uses_the_generated_key(render: Callable[..., list[Obj]]) -> None:
    objects = render({"archetypes": [{"name": "maat", "mode": "prompt"}]})
    gateway = container([one(objects, "Deployment", "-gateway")], "litellm")
    env = env_of(gateway)
    for name in ("LITELLM_MASTER_KEY", "ARCHON_UPSTREAM_API_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key", name


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"apiKey": {"enabled": False}, "ingress": {"enabled": True}}, ["ingress.enabled=true"]),
        (
            {"apiKey": {"enabled": False}, "service": {"type": "NodePort"}},
            ["service.type=NodePort"],
        ),
        (
            {"apiKey": {"enabled": False}, "service": {"type": "LoadBalancer"}},
            ["service.type=LoadBalancer"],
        ),
    ],
    ids=["ingress", "nodeport", "loadbalancer"],
)
def test_exposure_without_a_key_is_refused(
    values: Obj, names: list[str], render_error: Callable[..., str]
) -> None:
    err = render_error(values)
    for name in [*names, "apiKey.enabled=false", "apiKey.allowUnauthenticatedExposure=true"]:
        assert name in err
    assert len(err.strip().splitlines()) <= 3, "one line, not a template dump"


def test_a_trusted_lan_may_opt_out(render: Callable[..., list[Obj]]) -> None:
    objects = render({"apiKey": LAN, "service": {"type": "NodePort"}, "ingress": {"enabled": True}})
    assert one(objects, "Service", "-server")["spec"]["type"] == "NodePort"
    assert "VLLM_API_KEY" not in env_of(container(objects))


def test_only_v1_of_vllm_is_routed_from_outside(
    render: Callable[..., list[Obj]], render_error: Callable[..., str]
) -> None:
    def hosts(*paths: str) -> Obj:
        return {
            "enabled": True,
            "hosts": [
                {"host": "a.lan", "paths": [{"path": p, "pathType": "Prefix"} for p in paths]}
            ],
        }

    for bad in ("/", "/metrics", "/v1x", "/tokenize"):
        err = render_error({"ingress": hosts("/v1", bad)})
        assert f"ingress.hosts[0].paths[1].path={bad}" in err and "fix: set the path to /v1" in err
    ingress = one(render({"ingress": hosts("/v1", "/v1/models")}), "Ingress")
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == [
        "/v1",
        "/v1/models",
    ]
    # the gateway checks its key on every route: any path may go there
    gateway = render({"ingress": hosts("/"), "archetypes": [{"name": "maat", "mode": "prompt"}]})
    assert one(gateway, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"


# --- NetworkPolicies --------------------------------------------------------------------------


def _policies(objects: list[Obj]) -> dict[str, Obj]:
    return {
        o["metadata"]["name"]: o
        for o in objects
        if o["kind"] == "NetworkPolicy" and "helm.sh/hook" not in annotations_of(o)
    }


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _pods(objects: list[Obj]) -> list[tuple[str, dict[str, str]]]:
    found = []
    for o in objects:
        if o["kind"] == "Pod":
            found.append((o["metadata"]["name"], o["metadata"]["labels"]))
        elif o["kind"] in ("Deployment", "Job"):
            found.append((o["metadata"]["name"], o["spec"]["template"]["metadata"]["labels"]))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_pod_is_guarded_by_a_policy_both_ways(
    values_file: Path, render: Callable[..., list[Obj]]
) -> None:
    objects = render(values_file)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    assert policies
    for name, labels in _pods(objects):
        guarding = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        assert guarding, name
        types = {t for p in guarding for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, name


def test_the_server_admits_only_the_gateway_and_the_tests_by_default(
    render: Callable[..., list[Obj]],
) -> None:
    server = _policies(render())["archon-server"]["spec"]
    (rule,) = server["ingress"]
    peers = rule["from"]
    assert all("namespaceSelector" not in p for p in peers), "nothing outside the namespace"
    (pods,) = peers
    assert pods["podSelector"]["matchExpressions"][0]["values"] == ["test"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]


def test_the_ingress_controller_and_prometheus_come_in_only_when_asked(
    render: Callable[..., list[Obj]],
) -> None:
    values: Obj = {
        "ingress": {"enabled": True},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "networkPolicy": {"ingressControllerNamespace": "traefik"},
    }
    peers = _policies(render(values))["archon-server"]["spec"]["ingress"][0]["from"]
    namespaces = [p["namespaceSelector"]["matchLabels"] for p in peers if "namespaceSelector" in p]
    assert namespaces == [
        {"kubernetes.io/metadata.name": "traefik"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    # with the gateway in front, the controller reaches the gateway, not vLLM
    gw = render({**values, "archetypes": [{"name": "maat", "mode": "prompt"}]})
    server_peers = _policies(gw)["archon-server"]["spec"]["ingress"][0]["from"]
    assert {"kubernetes.io/metadata.name": "traefik"} not in [
        p.get("namespaceSelector", {}).get("matchLabels") for p in server_peers
    ]
    gateway_peers = _policies(gw)["archon-gateway"]["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}}} in (
        gateway_peers
    )


def test_egress_is_dns_and_https_never_the_metadata_service(
    render: Callable[..., list[Obj]],
) -> None:
    egress = _policies(render())["archon-server"]["spec"]["egress"]
    dns, https = egress
    assert "to" not in dns and {p["port"] for p in dns["ports"]} == {53}
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]
    metadata = ipaddress.ip_address("169.254.169.254")
    v4 = next(p["ipBlock"] for p in https["to"] if p["ipBlock"]["cidr"] == "0.0.0.0/0")
    assert any(metadata in ipaddress.ip_network(c) for c in v4["except"])


# --- supply chain and storage -----------------------------------------------------------------

DIGEST = "sha256:" + "0123456789abcdef" * 4


def test_images_pin_by_digest_when_asked(
    render: Callable[..., list[Obj]], run_helm: Callable[..., object]
) -> None:
    values: Obj = {
        "image": {"digest": DIGEST},
        "test": {"image": {"digest": DIGEST}},
        "gateway": {"image": {"digest": DIGEST}},
        "archetypes": [{"name": "maat", "mode": "prompt"}],
    }
    objects = render(values)
    server = [one(objects, "Deployment", "-server")]
    assert container(server)["image"] == f"vllm/vllm-openai:v0.19.1@{DIGEST}"
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]
    assert (
        gateway["containers"][0]["image"] == f"ghcr.io/berriai/litellm:v1.80.11-stable.1@{DIGEST}"
    )
    assert one(objects, "Pod", "-test-api")["spec"]["containers"][0]["image"].endswith(DIGEST)
    amd = render({"gpu": {"vendor": "amd", "amd": {"image": {"digest": DIGEST}}}})
    assert container(amd)["image"] == f"vllm/vllm-openai-rocm:v0.19.1@{DIGEST}"
    assert container(render())["image"] == "vllm/vllm-openai:v0.19.1"


def test_a_malformed_digest_is_refused(render_error: Callable[..., str]) -> None:
    assert "digest" in render_error({"image": {"digest": "sha256:abc"}})


def test_the_server_reads_the_model_cache_read_only(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    vllm, download = container(objects), container(objects, "download")
    mounts = {m["name"]: m for m in vllm["volumeMounts"]}
    assert mounts["model-cache"]["readOnly"] is True
    assert env_of(vllm)["HF_HUB_OFFLINE"]["value"] == "1", "offline: it never writes the Hub cache"
    # trust-remote-code modules go to the writable home, not under HF_HOME=/models
    modules = env_of(vllm)["HF_MODULES_CACHE"]["value"]
    assert not modules.startswith("/models") and modules.startswith(env_of(vllm)["HOME"]["value"])
    assert "readOnly" not in {m["name"]: m for m in download["volumeMounts"]}["model-cache"]


def test_amd_supplemental_groups_match_the_profiles(render: Callable[..., list[Obj]]) -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["gpu"]["amd"]
    for profile in PROFILES:
        amd = yaml.safe_load(profile.read_text()).get("gpu", {}).get("amd", {})
        if "supplementalGroups" in amd:
            assert amd["supplementalGroups"] == defaults["supplementalGroups"], profile.name
    spec = pod_spec(render({"gpu": {"vendor": "amd"}}))
    assert spec["securityContext"]["supplementalGroups"] == [44, 992]


def _mi(quantity: str) -> int:
    number, unit = re.fullmatch(r"([0-9]+)([A-Za-z]*)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * {"Mi": 1, "Gi": 1024, "Ti": 1024 * 1024}[unit]


@pytest.mark.slow
@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_ephemeral_storage_covers_the_scratch_volumes(
    values_file: Path, render: Callable[..., list[Obj]]
) -> None:
    for obj in render(values_file):
        if obj["kind"] not in ("Deployment", "Job", "Pod"):
            continue
        spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
        disk = {
            v["name"]: _mi(v["emptyDir"].get("sizeLimit", "0Mi"))
            for v in spec.get("volumes", [])
            if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"
        }
        for c in spec["containers"] + spec.get("initContainers", []):
            resources = c["resources"]
            need = sum(disk.get(m["name"], 0) for m in c.get("volumeMounts", []))
            for section in ("requests", "limits"):
                assert "ephemeral-storage" in resources[section], (
                    obj["metadata"]["name"],
                    c["name"],
                )
            assert _mi(resources["limits"]["ephemeral-storage"]) >= need, c["name"]


@pytest.mark.slow
@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_object_names_its_namespace(
    values_file: Path, render: Callable[..., list[Obj]]
) -> None:
    for obj in render(values_file):
        assert obj["metadata"].get("namespace") == "ai", (obj["kind"], obj["metadata"]["name"])
