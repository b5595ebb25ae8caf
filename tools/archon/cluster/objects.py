"""What a homelab GPU cluster has besides its nodes: the `nvidia` RuntimeClass the NVIDIA GPU
operator installs, and a default StorageClass (kwok's volume stages play its provisioner)."""

from __future__ import annotations

from typing import Any

from archon.cluster.gpu_nodes import PROFILE_LABEL, GpuNodeProfile
from archon.kube.rest import Kube

STORAGE_CLASS = "archon-local"
# The provisioner name the volume stages answer for (stages.yaml: pvc-provision).
PROVISIONER = "kwok.x-k8s.io/volume"

# The GPU operator's RuntimeClass: name and handler `nvidia` (gpu-operator
# assets/state-container-toolkit: RuntimeClass "nvidia", handler "nvidia").
RUNTIME_CLASS: dict[str, Any] = {
    "apiVersion": "node.k8s.io/v1",
    "kind": "RuntimeClass",
    "metadata": {"name": "nvidia"},
    "handler": "nvidia",
}

STORAGE_CLASS_BODY: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": STORAGE_CLASS,
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": PROVISIONER,
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


# k3s's class, which homelab values files name; same provisioner, not the default.
LOCAL_PATH_BODY: dict[str, Any] = {
    **STORAGE_CLASS_BODY,
    "metadata": {"name": "local-path"},
}


def ensure_cluster_objects(kube: Kube) -> None:
    kube.create_or_merge("/apis/node.k8s.io/v1/runtimeclasses", RUNTIME_CLASS)
    for body in (STORAGE_CLASS_BODY, LOCAL_PATH_BODY):
        kube.create_or_merge("/apis/storage.k8s.io/v1/storageclasses", body)


def ensure_nodes(kube: Kube, profiles: list[GpuNodeProfile]) -> list[str]:
    """Create or refresh one node per profile; remove Archon nodes of profiles not asked for."""
    wanted = {p.node_name: p for p in profiles}
    for node in kube.items("/api/v1/nodes", labelSelector=PROFILE_LABEL):
        if node["metadata"]["name"] not in wanted:
            kube.delete(f"/api/v1/nodes/{node['metadata']['name']}")
    for profile in profiles:
        body = profile.node()
        kube.create_or_merge("/api/v1/nodes", {k: v for k, v in body.items() if k != "status"})
        # Status is a subresource: a create keeps it, an update must go through /status.
        kube.patch(f"/api/v1/nodes/{profile.node_name}/status", {"status": body["status"]})
    return list(wanted)
