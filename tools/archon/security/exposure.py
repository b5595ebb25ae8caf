"""What an unauthenticated request from outside the release's namespace can reach, read from the
rendered objects: Services (type), the Ingress (paths), NetworkPolicies (who may connect) and
which containers check a key.

vLLM's `--api-key` guards only the `/v1` prefix (vLLM docs/usage/security.md): a peer that may
connect to a vLLM pod reaches /metrics, /tokenize, /invocations and the rest without a key. The
LiteLLM gateway with a master key checks it on its API routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
OUTSIDE_CLUSTER = ("NodePort", "LoadBalancer")


@dataclass(frozen=True)
class Exposure:
    workload: str
    origin: str  # who, from outside the namespace
    reaches: str  # what they reach without a key

    def line(self) -> str:
        return f"{self.origin} -> {self.workload}: {self.reaches}"


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value = labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and value not in expr["values"]:
            return False
        if op == "NotIn" and value in expr["values"]:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
    return True


def _outside_peers(policies: list[Obj], labels: dict[str, str]) -> list[str] | None:
    """Peers outside the namespace allowed in; None when no policy restricts ingress."""
    guarding = [
        p
        for p in policies
        if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
        and _selects(p["spec"].get("podSelector") or {}, labels)
    ]
    if not guarding:
        return None
    peers: list[str] = []
    for policy in guarding:
        for rule in policy["spec"].get("ingress") or []:
            sources = rule.get("from")
            if not sources:
                peers.append("any pod or address")
                continue
            for peer in sources:
                if "ipBlock" in peer:
                    peers.append(f"addresses {peer['ipBlock']['cidr']}")
                elif "namespaceSelector" in peer:
                    names = (peer["namespaceSelector"].get("matchLabels") or {}).get(
                        "kubernetes.io/metadata.name", "any namespace"
                    )
                    peers.append(f"namespace {names}")
    return peers


def _workloads(objects: list[Obj]) -> list[tuple[str, dict[str, str], Obj]]:
    found = []
    for obj in objects:
        if obj["kind"] == "Deployment":
            template = obj["spec"]["template"]
            found.append(
                (obj["metadata"]["name"], template["metadata"]["labels"], template["spec"])
            )
    return found


def _keyed(spec: Obj) -> tuple[bool, bool]:
    """(is vLLM, checks a key) of a pod spec."""
    container = spec["containers"][0]
    env = {e["name"] for e in container.get("env") or []}
    if container["name"] == "vllm":
        return True, "VLLM_API_KEY" in env
    return False, "LITELLM_MASTER_KEY" in env


def unauthenticated_reach(objects: list[Obj]) -> list[Exposure]:
    """Every way in from outside the namespace that needs no key, and what it reaches."""
    policies = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy"
        and "helm.sh/hook" not in (o["metadata"].get("annotations") or {})
    ]
    services = [o for o in objects if o["kind"] == "Service"]
    ingresses = [o for o in objects if o["kind"] == "Ingress"]
    found: list[Exposure] = []
    for name, labels, spec in _workloads(objects):
        vllm, keyed = _keyed(spec)
        if vllm:
            open_part = "every route but /v1" if keyed else "every route, /v1 included"
        else:
            if keyed:
                continue  # the gateway checks its key on its API routes
            open_part = "every route"
        peers = _outside_peers(policies, labels)
        origins = ["any pod of the cluster"] if peers is None else peers
        for origin in origins:
            found.append(Exposure(name, origin, open_part))
        for service in services:
            selector = service["spec"].get("selector") or {}
            if (
                _selects({"matchLabels": selector}, labels)
                and service["spec"].get("type") in OUTSIDE_CLUSTER
            ):
                found.append(
                    Exposure(name, f"{service['spec']['type']} (outside the cluster)", open_part)
                )
        for ingress in ingresses:
            for rule in ingress["spec"].get("rules") or []:
                for path in (rule.get("http") or {}).get("paths") or []:
                    backend = path["backend"]["service"]["name"]
                    target = next((s for s in services if s["metadata"]["name"] == backend), None)
                    if target is None or not _selects(
                        {"matchLabels": target["spec"].get("selector") or {}}, labels
                    ):
                        continue
                    p = str(path["path"])
                    v1_only = p == "/v1" or p.startswith("/v1/")
                    if vllm and keyed and v1_only:
                        continue
                    reach = f"{p}* without a key" if not keyed else f"{p}* outside the key's /v1"
                    found.append(Exposure(name, f"Ingress {rule.get('host')}{p}", reach))
    return found
