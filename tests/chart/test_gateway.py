"""templates/gateway: the LiteLLM gateway runs only when asked, and always serves the base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import (
    PROMPT,
    engine_config,
    gateway_config,
    one,
    rendered,
)

pytestmark = pytest.mark.slow


def test_no_archetypes_no_gateway(toolchain: dict[str, Path]) -> None:
    objects = rendered(ingress={"enabled": True})
    assert not [o for o in objects if "gateway" in o["metadata"]["name"]]
    backend = one(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "archon-server"
    assert "enable-lora" not in engine_config(objects)


def test_the_gateway_always_serves_the_base_model(toolchain: dict[str, Path]) -> None:
    # gateway.enabled: true without archetypes: the Ingress points at the gateway, which must
    # still serve the model (an empty model_list answers nothing).
    objects = rendered(gateway={"enabled": True}, ingress={"enabled": True})
    backend = one(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "archon-gateway"
    (base,) = gateway_config(objects)["model_list"]
    assert base["model_name"] == "qwen2.5-coder-14b"
    assert base["litellm_params"]["model"] == "openai/qwen2.5-coder-14b"
    assert base["litellm_params"]["api_base"] == "http://archon-server:8000/v1"
    assert (
        "temperature" not in base["litellm_params"] and "max_tokens" not in base["litellm_params"]
    )
    assert base["model_info"]["archon_mode"] == "base"
    table = json.loads(one(objects, "ConfigMap", "-gateway-config")["data"]["archetypes.json"])
    assert table == {}, "no system prompt for the base model"
    # With archetypes, the base model stays reachable next to them.
    names = [e["model_name"] for e in gateway_config(rendered(PROMPT))["model_list"]]
    assert names == ["qwen2.5-coder-14b", "maat"]
