"""Paths and small lookups shared by the chart tests (the fixtures are in conftest.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "archon"
TEMPLATES = CHART / "templates"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
PROFILES = sorted((REPO_ROOT / "values").glob("*.yaml"))
HELM_TIMEOUT_S = 120

Obj = dict[str, Any]


def values_text(values: Obj | str | Path | None) -> str:
    if values is None:
        return ""
    if isinstance(values, Path):
        return values.read_text(encoding="utf-8")
    if isinstance(values, str):
        return values
    return yaml.safe_dump(values)


def one(objects: list[Obj], kind: str, name_suffix: str = "") -> Obj:
    found = [
        o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {len(found)}"
    return found[0]


def kinds(objects: list[Obj]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: list[Obj], name: str = "vllm") -> Obj:
    spec = pod_spec(objects)
    every = spec["containers"] + spec.get("initContainers", [])
    found: list[Obj] = [c for c in every if c["name"] == name]
    assert len(found) == 1, f"no container {name}"
    return found[0]


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def engine_config(objects: list[Obj], component: str = "server") -> Obj:
    server_config = one(objects, "ConfigMap", f"-{component}-config")
    config: Obj = yaml.safe_load(server_config["data"]["vllm-config.yaml"])
    return config


def gateway_config(objects: list[Obj]) -> Obj:
    config: Obj = yaml.safe_load(
        one(objects, "ConfigMap", "-gateway-config")["data"]["config.yaml"]
    )
    return config


def annotations_of(obj: Obj) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("annotations") or {}
    return found


# --- archetypes, rendered through archon.render (the schema check first, like the CLI) ---------

ARCHETYPES_SCENARIO = CHART / "ci" / "archetypes-values.yaml"
COUNCIL = REPO_ROOT / "values" / "council.yaml"
PROMPT: Obj = {"name": "maat", "mode": "prompt", "systemPrompt": "judge"}
INSTANCE: Obj = {
    "name": "roc",
    "mode": "instance",
    "instance": {
        "model": {
            "name": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
            "maxModelLen": 4096,
            "gpuMemoryUtilization": 0.1,
        },
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
    },
}


def lora(name: str, source: str, rank: int | None = None) -> Obj:
    spec: Obj = {"source": source} | ({"rank": rank} if rank else {})
    return {"name": name, "mode": "lora", "lora": spec}


def rendered(*archetypes: Obj, files: tuple[Path, ...] = (), **values: Any) -> list[Obj]:
    from archon.render import render_chart

    overrides = {"archetypes": list(archetypes), **values} if archetypes else values
    return render_chart(files, overrides=overrides or None).objects
