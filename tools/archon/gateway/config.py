"""The gateway files the chart renders, and the same config pointed at loopback servers.

Tests, the benchmark and local trials run the chart's own LiteLLM config (not a hand-written
copy) against simulations of vLLM: only each entry's `api_base` changes, from the in-cluster
Service to a 127.0.0.1 URL.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from archon.errors import UsageError
from archon.paths import gateway_hook

CONFIG = "config.yaml"
ARCHETYPES = "archetypes.json"
HOOK = "archon_hook.py"
COUNCIL = "council.json"
COUNCIL_MODULES = (
    "archon_council.py",
    "archon_council_client.py",
    "archon_council_prompts.py",
    "archon_memory.py",
)
FILES = (CONFIG, ARCHETYPES, HOOK, COUNCIL, *COUNCIL_MODULES)
# The provider the chart's model_list uses for vLLM servers; other entries (the council's
# custom handler) run inside the proxy and need no upstream.
UPSTREAM_PROVIDER = "openai"


def gateway_files(objects: list[dict[str, Any]]) -> dict[str, str]:
    """The data of the rendered gateway ConfigMap: config.yaml, archetypes.json, archon_hook.py."""
    for obj in objects:
        name = str(obj.get("metadata", {}).get("name", ""))
        if obj.get("kind") == "ConfigMap" and name.endswith("-gateway-config"):
            data: dict[str, str] = obj.get("data") or {}
            return data
    raise UsageError(
        "the rendered chart has no gateway ConfigMap",
        key="gateway.enabled",
        fix="enable an archetype or set gateway.enabled: true",
    )


def upstream_models(config: dict[str, Any]) -> dict[str, str]:
    """archetype name -> the model name its vLLM server serves (`openai/<name>` without prefix)."""
    out = {}
    for entry in config.get("model_list") or []:
        provider, _, served = str(entry["litellm_params"]["model"]).partition("/")
        if provider == UPSTREAM_PROVIDER:
            out[str(entry["model_name"])] = served
    return out


def localize(
    config: dict[str, Any], upstreams: Mapping[str, str], *, master_key: str | None = None
) -> dict[str, Any]:
    """The config with every entry's api_base taken from `upstreams` (served model -> base URL,
    e.g. http://127.0.0.1:PORT), and the master key written in (never the case in a cluster)."""
    out = copy.deepcopy(config)
    for entry in out.get("model_list") or []:
        params = entry["litellm_params"]
        provider, _, served = str(params["model"]).partition("/")
        if provider != UPSTREAM_PROVIDER:
            continue
        if served not in upstreams:
            raise UsageError(
                f"no local server for {served!r}",
                key=f"model_list[{entry['model_name']}]",
                fix="start a simulation serving that model name",
            )
        params["api_base"] = upstreams[served].rstrip("/") + "/v1"
        if str(params.get("api_key", "")).startswith("os.environ/"):
            params["api_key"] = "no-key"
    general = out.setdefault("general_settings", {})
    general.pop("master_key", None)
    if master_key:
        general["master_key"] = master_key
    if not general:
        out.pop("general_settings")
    return out


def write_config_dir(
    files: Mapping[str, str], directory: Path, config: dict[str, Any] | None = None
) -> Path:
    """Write the gateway files into `directory` (config replaced by `config` when given);
    returns the config path. The hook sits next to the config, where LiteLLM imports it from."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        if name in files:
            (directory / name).write_text(files[name], encoding="utf-8")
    if config is not None:
        (directory / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return directory / CONFIG


def copy_hook(directory: Path) -> None:
    """Put the chart's hook next to a config (for configs not rendered by the chart)."""
    shutil.copyfile(gateway_hook(), directory / HOOK)


def load_hook() -> ModuleType:
    """The chart's hook as a module, for code that calls its functions outside LiteLLM.

    Executed from source rather than through an import spec so no __pycache__ lands inside the
    chart (helm would package it)."""
    path = gateway_hook()
    module = ModuleType("archon_hook")
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module
