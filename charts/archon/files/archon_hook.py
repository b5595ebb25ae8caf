"""LiteLLM proxy hook: gives each archetype its system prompt and guided decoding.

LiteLLM routes an archetype's name to its vLLM server and applies the sampling defaults of its
`litellm_params` (the client's own values win); it has no per-model system prompt or structured
output setting, so this pre-call hook adds them. It runs inside the LiteLLM container, where the
archon package is not installed: standard library only, plus litellm itself.

This file is the one source: the chart's gateway ConfigMap carries it, and the archon package
reads it from the chart it ships (a local gateway copies it next to its config). LiteLLM loads it
with `litellm_settings.callbacks: archon_hook.proxy_handler_instance`.
The archetypes come from the JSON file the chart renders next to the config
(ARCHON_ARCHETYPES_FILE): `{"<name>": {"systemPrompt": "...", "guidedDecoding": {...}}}`.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

ARCHETYPES_ENV = "ARCHON_ARCHETYPES_FILE"
DEFAULT_FILE = "archetypes.json"

Archetypes = dict[str, dict[str, Any]]


def load_archetypes(path: str | os.PathLike[str] | None = None) -> Archetypes:
    """The archetype table; a missing file means no archetypes (the hook then changes nothing)."""
    file = Path(path or os.environ.get(ARCHETYPES_ENV) or Path(__file__).with_name(DEFAULT_FILE))
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a JSON object of archetypes")
    return {str(k): v for k, v in data.items() if isinstance(v, dict)}


def apply_archetype(data: dict[str, Any], archetype: dict[str, Any]) -> dict[str, Any]:
    """The request with the archetype's system prompt first and its guided decoding set.

    The client's own system message stays after the archetype's (the persona frames, the client
    specialises); a client that asks for its own structured output keeps it.
    """
    out = copy.copy(data)
    prompt = archetype.get("systemPrompt")
    messages = out.get("messages")
    if prompt and isinstance(messages, list):
        out["messages"] = [{"role": "system", "content": prompt}, *messages]
    guided = archetype.get("guidedDecoding") or {}
    extra = dict(out.get("extra_body") or {})
    if guided and "response_format" not in out and "structured_outputs" not in extra:
        # vLLM >= 0.12 reads structured output from `structured_outputs` (the guided_* fields
        # were removed). Source: docs.vllm.ai/en/latest/features/structured_outputs/.
        if "json" in guided:
            extra["structured_outputs"] = {"json": guided["json"]}
        elif "regex" in guided:
            extra["structured_outputs"] = {"regex": guided["regex"]}
        out["extra_body"] = extra
    return out


def _custom_logger() -> Any:
    # Imported by name so the pure functions above load (and are tested) without litellm.
    try:
        return importlib.import_module("litellm.integrations.custom_logger").CustomLogger
    except ImportError:
        return object


class ArchonArchetypes(_custom_logger()):  # type: ignore[misc]
    """The LiteLLM callback: applies the archetype named by the request's `model`."""

    def __init__(self, archetypes: Archetypes | None = None) -> None:
        super().__init__()
        self.archetypes = load_archetypes() if archetypes is None else archetypes

    async def async_pre_call_hook(
        self, user_api_key_dict: Any, cache: Any, data: dict[str, Any], call_type: Any
    ) -> dict[str, Any]:
        archetype = self.archetypes.get(str(data.get("model")))
        if archetype is None or "messages" not in data:
            return data
        return apply_archetype(data, archetype)


proxy_handler_instance = ArchonArchetypes()


def __getattr__(name: str) -> Any:
    """`council_handler`: the council's LiteLLM handler (files/archon_council.py), for
    `custom_provider_map`. LiteLLM executes a configured file without entering it in sys.modules
    or its folder in sys.path, which the council's dataclasses and its `import archon_memory`
    need; imported from here, by name, it gets both."""
    if name != "council_handler":
        raise AttributeError(name)
    folder = str(Path(__file__).resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module("archon_council").handler
