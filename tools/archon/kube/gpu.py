"""How Kubernetes names GPUs: the device plugins' extended resources and the node labels their
feature discovery puts on GPU nodes (NVIDIA GPU operator's GFD, AMD's k8s-node-labeller)."""

from __future__ import annotations

RESOURCE = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}
PRODUCT_LABELS = ("nvidia.com/gpu.product", "amd.com/gpu.product-name")
MEMORY_LABELS = {"nvidia.com/gpu.memory": " MiB", "amd.com/gpu.vram": ""}  # label -> unit
