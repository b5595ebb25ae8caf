"""Archetype checks JSON schema cannot express, as lint Problems.

The chart refuses the same lists with `fail` (templates/archetypes/_helpers.tpl); lint finds them
without helm and reports each on its own line.
"""

from __future__ import annotations

from typing import Any

from archon.errors import Problem

Values = dict[str, Any]


def enabled_archetypes(values: Values) -> list[dict[str, Any]]:
    return [
        a
        for a in values.get("archetypes") or []
        if isinstance(a, dict) and a.get("enabled", True) is not False
    ]


def gateway_enabled(values: Values) -> bool:
    mode = (values.get("gateway") or {}).get("enabled", "auto")
    if isinstance(mode, bool):
        return mode
    return bool(enabled_archetypes(values))


def archetype_problems(values: Values, source: str = "") -> list[Problem]:
    """Duplicate names, a name that shadows the base model, archetypes with the gateway off,
    and more GPU pods than the node offers."""
    problems: list[Problem] = []
    archetypes = values.get("archetypes") or []
    model = values.get("model") or {}
    base = model.get("servedModelName") or model.get("name")
    first: dict[str, int] = {}
    for index, archetype in enumerate(archetypes):
        if not isinstance(archetype, dict):
            continue
        name = archetype.get("name")
        key = f"archetypes[{index}].name"
        if name in first:
            problems.append(
                Problem(
                    key,
                    f"{name!r} is also archetypes[{first[name]}].name: the gateway routes by name",
                    "give every archetype a unique name",
                    value=name,
                    source=source,
                )
            )
        elif isinstance(name, str):
            first[name] = index
        if name is not None and name == base:
            problems.append(
                Problem(
                    key,
                    "is the served name of the base model",
                    "rename the archetype",
                    value=name,
                    source=source,
                )
            )
    enabled = enabled_archetypes(values)
    if enabled and not gateway_enabled(values):
        problems.append(
            Problem(
                "gateway.enabled",
                "false with enabled archetypes: only the gateway adds their prompts and names",
                "set gateway.enabled: auto (or disable the archetypes)",
                value=False,
                source=source,
            )
        )
    gpu = values.get("gpu") or {}
    replicas = int(values.get("replicaCount", 1))
    wanted = replicas * int(gpu.get("count", 1))
    for archetype in enabled:
        if archetype.get("mode") == "instance":
            count = ((archetype.get("instance") or {}).get("gpu") or {}).get("count", 1)
            wanted += replicas * int(count)
    capacity = int(gpu.get("nodeCapacity", 1))
    if wanted > capacity:
        problems.append(
            Problem(
                "gpu.nodeCapacity",
                f"the server and the instance archetypes request {wanted} GPUs but the node "
                f"offers {capacity}: the extra pods stay Pending",
                "share the card (NVIDIA time-slicing) and raise gpu.nodeCapacity to the slots the "
                "node advertises, or use mode: prompt",
                value=capacity,
                source=source,
            )
        )
    return problems
