"""Fake GPU nodes: which card, how much memory, and the labels real GPU nodes carry.

Cards and their driver-reported memory come from the preflight's GPU profiles
(data/gpus/profiles.yaml), so a node and the preflight never disagree about a card.

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

from archon.kube.gpu import RESOURCE as RESOURCE  # lifecycle reads it from here

# The Archon label that names the profile a node was made from (status and tests read it).
PROFILE_LABEL = "archon.dev/gpu-profile"
# kwokctl's kwok-controller manages only nodes with this annotation (kwokctl default flag
# --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake).
KWOK_ANNOTATION = "kwok.x-k8s.io/node"


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


# Family label values: NVIDIA GPU feature discovery's architecture names; AMD's labeller uses a
# two-letter family ("NV" for Navi, RDNA 2-4). Device id 744c: Navi 31 (RX 7900 XTX), from the PCI
# ID database; other cards carry no device-id label here.
_NVIDIA_FAMILY = {
    "sm_120": "blackwell",
    "sm_100": "blackwell",
    "sm_90": "hopper",
    "sm_89": "ada-lovelace",
    "sm_86": "ampere",
    "sm_80": "ampere",
    "sm_75": "turing",
    "sm_70": "volta",
}
_AMD_DEVICE_ID = {"RX 7900 XTX": "744c"}
DEFAULT_PROFILES = ("RTX 5080", "RX 7900 XTX")


def find_profile(name: str) -> GpuNodeProfile:
    """A fake node for any card of the preflight's GPU profiles (one source of GPU facts)."""
    from archon.preflight.profiles import load_profiles

    gpu = load_profiles().find(name, key="--profile")
    family = _NVIDIA_FAMILY.get(gpu.arch, "unknown") if gpu.vendor == "nvidia" else "NV"
    return GpuNodeProfile(
        gpu.name, gpu.vendor, gpu.memory_mib, family, device_id=_AMD_DEVICE_ID.get(gpu.name, "")
    )
