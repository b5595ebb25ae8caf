"""The GPU budget of archetypes: LoRA slots on the shared server and instances beside it.

Mirrors what the chart renders (templates/archetypes/_helpers.tpl): the LoRA settings of the
shared server, and each `instance` archetype's model as its `instance.model` over the top-level
`model` without the keys that name the checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

# vLLM LoRAConfig possible_max_ranks (vllm/config/lora.py): the chart rounds up to one of these.
SUPPORTED_LORA_RANKS = (8, 16, 32, 64, 128, 256)
DEFAULT_LORA_RANK = 16  # vLLM's --max-lora-rank default

# What an instance never inherits from the top-level model (same list as the chart).
_OWN_KEYS: dict[str, Any] = {
    "revision": "main",
    "quantization": "",
    "dtype": "",
    "runner": "",
    "allowPatterns": [],
    "extraArgs": [],
    "extraConfig": {},
}

# Sum of all vLLM utilizations on one card: the budget, leaving room for the CUDA
# contexts of several processes that each engine's own estimate does not see.
SHARED_GPU_CEILING = 0.95


@dataclass(frozen=True)
class Instance:
    index: int
    name: str
    values: dict[str, Any]  # chart values as this instance's vLLM sees them
    gpus: int


def enabled(values: dict[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    return [
        (index, archetype)
        for index, archetype in enumerate(values.get("archetypes") or [])
        if isinstance(archetype, dict) and archetype.get("enabled", True) is not False
    ]


def lora_slots(values: dict[str, Any]) -> tuple[int, int]:
    """(--max-loras, --max-lora-rank) the chart gives the shared server; (0, 16) without LoRA."""
    ranks = [
        int((archetype.get("lora") or {}).get("rank") or DEFAULT_LORA_RANK)
        for _, archetype in enabled(values)
        if archetype.get("mode") == "lora"
    ]
    if not ranks:
        return 0, DEFAULT_LORA_RANK
    wanted = max(ranks)
    rank = next((r for r in SUPPORTED_LORA_RANKS if wanted <= r), SUPPORTED_LORA_RANKS[-1])
    return len(ranks), rank


def instances(values: dict[str, Any]) -> list[Instance]:
    found = []
    for index, archetype in enabled(values):
        if archetype.get("mode") != "instance":
            continue
        spec = archetype.get("instance") or {}
        model = copy.deepcopy(values.get("model") or {})
        model.update(copy.deepcopy(_OWN_KEYS))
        model["servedModelName"] = archetype.get("name", "")
        model.update(copy.deepcopy(spec.get("model") or {}))
        own = copy.deepcopy(values)
        own["model"] = model
        own["archetypes"] = []
        gpus = (spec.get("gpu") or {}).get("count") or 1
        found.append(Instance(index, str(archetype.get("name", "")), own, int(gpus)))
    return found
