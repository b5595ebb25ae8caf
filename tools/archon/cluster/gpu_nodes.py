"""Fake GPU nodes: which card, how much memory, and the labels real GPU nodes carry.

Memory figures are the driver-reported MiB from /work/shared/reference/gpus.md (NVIDIA table:
"reported MiB"; AMD: RX 7900 XTX "24 GB (24560 MiB)").

Labels: the NVIDIA GPU operator's GPU feature discovery puts `nvidia.com/gpu.product` (the
product name with spaces as dashes), `nvidia.com/gpu.memory` (MiB), `nvidia.com/gpu.count` and
`nvidia.com/gpu.present`; AMD's k8s-node-labeller (ROCm k8s-device-plugin, cmd/k8s-node-labeller
README) puts `amd.com/gpu.product-name`, `amd.com/gpu.vram` (e.g. "24G"), `amd.com/gpu.family`
(two letters; Navi = "NV") and `amd.com/gpu.device-id`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from archon.errors import UsageError

# The Archon label that names the profile a node was made from (status and tests read it).
PROFILE_LABEL = "archon.dev/gpu-profile"
# kwokctl's kwok-controller manages only nodes with this annotation (kwokctl default flag
# --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake).
KWOK_ANNOTATION = "kwok.x-k8s.io/node"

RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}


@dataclass(frozen=True)
class GpuNodeProfile:
    name: str  # as the user writes it: "RTX 5080"
    vendor: str  # nvidia | amd
    memory_mib: int
    family: str
    device_id: str = ""
    count: int = 1
    # A homelab box around one consumer card.
    cpu: str = "16"
    memory: str = "64Gi"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "", self.name.lower())

    @property
    def node_name(self) -> str:
        return f"gpu-{self.slug}-0"

    @property
    def resource(self) -> str:
        return RESOURCE[self.vendor]

    def labels(self) -> dict[str, str]:
        labels = {
            "kubernetes.io/hostname": self.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
            PROFILE_LABEL: self.slug,
        }
        if self.vendor == "nvidia":
            labels |= {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": "NVIDIA-GeForce-" + self.name.replace(" ", "-"),
                "nvidia.com/gpu.memory": str(self.memory_mib),
                "nvidia.com/gpu.count": str(self.count),
                "nvidia.com/gpu.family": self.family,
            }
        else:
            labels |= {
                "amd.com/gpu.product-name": "Radeon_" + self.name.replace(" ", "_"),
                "amd.com/gpu.vram": f"{round(self.memory_mib / 1024)}G",
                "amd.com/gpu.family": self.family,
                "amd.com/gpu.device-id": self.device_id,
            }
        return labels

    def node(self) -> dict[str, Any]:
        resources = {
            "cpu": self.cpu,
            "memory": self.memory,
            "pods": "110",
            "ephemeral-storage": "1Ti",
            self.resource: str(self.count),
        }
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node_name,
                "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": self.labels(),
            },
            "spec": {},
            "status": {
                "capacity": resources,
                "allocatable": resources,
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": "fake",
                    "kubeProxyVersion": "fake",
                    "osImage": "kwok fake node",
                    "kernelVersion": "",
                    "containerRuntimeVersion": "",
                    "bootID": "",
                    "machineID": "",
                    "systemUUID": "",
                },
            },
        }


# Memory: gpus.md; family: NVIDIA GFD's architecture name, AMD labeller's two-letter family.
# Device id 744c: Navi 31 (RX 7900 XTX), from the PCI ID database.
PROFILES = [
    GpuNodeProfile("RTX 5080", "nvidia", 16303, "blackwell"),
    GpuNodeProfile("RTX 5090", "nvidia", 32607, "blackwell"),
    GpuNodeProfile("RTX 4090", "nvidia", 24564, "ada-lovelace"),
    GpuNodeProfile("RTX 3090", "nvidia", 24576, "ampere"),
    GpuNodeProfile("RX 7900 XTX", "amd", 24560, "NV", device_id="744c"),
]
DEFAULT_PROFILES = ("RTX 5080", "RX 7900 XTX")


def find_profile(name: str) -> GpuNodeProfile:
    slug = re.sub(r"[^a-z0-9]+", "", name.lower())
    for profile in PROFILES:
        if profile.slug == slug or profile.slug == slug.removeprefix("geforce"):
            return profile
    raise UsageError(
        f"unknown GPU node profile {name!r}",
        key="--profile",
        fix="use one of: " + ", ".join(repr(p.name) for p in PROFILES),
    )
