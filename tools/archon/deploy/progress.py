"""What a release's pods and claims are doing, as follower lines (archon.kube.follow).

Two lines per pod, so neither step is lost when a poll misses a transition: where it runs (node
and GPU) and how far it got (scheduled -> pulling/starting -> started -> ready).
"""

from __future__ import annotations

from typing import Any

from archon.kube.follow import Snapshot
from archon.kube.gpu import MEMORY_LABELS, PRODUCT_LABELS, RESOURCE
from archon.kube.rest import Kube, Obj

INSTANCE_LABEL = "app.kubernetes.io/instance"


def selector(release: str) -> str:
    return f"{INSTANCE_LABEL}={release}"


def condition(obj: Obj, kind: str) -> Obj | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def gpu_request(pod: Obj) -> dict[str, int]:
    found: dict[str, int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        for resource in RESOURCE.values():
            if resource in limits:
                found[resource] = found.get(resource, 0) + int(limits[resource])
    return found


def gpu_text(pod: Obj, node: Obj | None) -> str:
    wanted = gpu_request(pod)
    if not wanted:
        return "no GPU"
    parts = [f"{r} x{n}" for r, n in wanted.items()]
    labels = ((node or {}).get("metadata") or {}).get("labels") or {}
    product = next((labels[k] for k in PRODUCT_LABELS if k in labels), "")
    memory = next((labels[k] + unit for k, unit in MEMORY_LABELS.items() if k in labels), "")
    if product:
        parts.append(product + (f", {memory}" if memory else ""))
    return ", ".join(parts)


def _waiting_reason(statuses: list[Obj]) -> str:
    for status in statuses:
        waiting = (status.get("state") or {}).get("waiting")
        if waiting:
            return str(waiting.get("reason") or "waiting")
    return ""


# Shown while a pod has no PodScheduled message yet: not a reason the scheduler gave.
WAITING_FOR_SCHEDULER = "waiting for the scheduler"


def pod_lines(pod: Obj, nodes: dict[str, Obj]) -> dict[str, str]:
    name = f"pod/{pod['metadata']['name']}"
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    lines: dict[str, str] = {}
    if pod["metadata"].get("deletionTimestamp"):
        return {f"{name}:state": f"{name}: terminating"}
    node_name = spec.get("nodeName")
    if not node_name:
        scheduled = condition(pod, "PodScheduled") or {}
        why = scheduled.get("message") or WAITING_FOR_SCHEDULER
        lines[f"{name}:place"] = f"{name}: not scheduled: {why}"
        return lines
    lines[f"{name}:place"] = (
        f"{name}: scheduled on {node_name} ({gpu_text(pod, nodes.get(node_name))})"
    )
    init_statuses = status.get("initContainerStatuses") or []
    statuses = status.get("containerStatuses") or []
    if condition(pod, "Ready") and (condition(pod, "Ready") or {}).get("status") == "True":
        state = "ready"
    elif status.get("phase") == "Running":
        state = "started, waiting for readiness"
    elif any((s.get("state") or {}).get("running") for s in init_statuses):
        running = [s["name"] for s in init_statuses if (s.get("state") or {}).get("running")]
        state = f"init container {', '.join(running)} running"
    else:
        reason = _waiting_reason(init_statuses) or _waiting_reason(statuses)
        state = f"pulling/starting ({reason or 'ContainerCreating'})"
    lines[f"{name}:state"] = f"{name}: {state}"
    return lines


def pvc_line(pvc: Obj) -> tuple[str, str]:
    name = f"pvc/{pvc['metadata']['name']}"
    status = pvc.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Bound":
        size = (status.get("capacity") or {}).get("storage", "?")
        cls = (pvc.get("spec") or {}).get("storageClassName") or "default"
        return name, f"{name}: Bound ({size}, storageClass {cls})"
    return name, f"{name}: {phase}"


def pod_ready(pod: Obj) -> bool:
    ready = condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True")


class ReleaseWatch:
    """Polls the pods and claims of one release; `snapshot()` is the follower's poll()."""

    def __init__(self, kube: Kube, namespace: str, release: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.release = release

    def pods(self) -> list[Obj]:
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        return self.kube.items(path, labelSelector=selector(self.release))

    def pvcs(self) -> list[Obj]:
        path = f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
        return self.kube.items(path, labelSelector=selector(self.release))

    def nodes(self) -> dict[str, Obj]:
        return {n["metadata"]["name"]: n for n in self.kube.items("/api/v1/nodes")}

    def snapshot(self) -> Snapshot:
        pods = self.pods()
        nodes = self.nodes()
        lines: dict[str, str] = {}
        for pvc in self.pvcs():
            key, text = pvc_line(pvc)
            lines[key] = text
        for pod in sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp"))):
            lines |= pod_lines(pod, nodes)
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        done = bool(live) and all(pod_ready(p) for p in live) and len(live) == len(pods)
        return Snapshot(lines=lines, done=done)

    def unschedulable_reason(self) -> str:
        """The scheduler's message for a pod it cannot place, if there is one."""
        for pod in self.pods():
            scheduled = condition(pod, "PodScheduled") or {}
            if scheduled.get("reason") == "Unschedulable":
                return str(scheduled.get("message") or "Unschedulable")
        return ""


def placement(pod: Obj, nodes: dict[str, Any]) -> str:
    node = (pod.get("spec") or {}).get("nodeName") or ""
    return f"{node or '(unscheduled)'}: {gpu_text(pod, nodes.get(node))}"
