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


# --- the council as model `council` ------------------------------------------------------------

COUNCIL_VALUES = Path(__file__).resolve().parents[2] / "values" / "council.yaml"


def _gateway_data(objects: list[dict[str, object]]) -> dict[str, str]:
    data: dict[str, str] = one(objects, "ConfigMap", "-gateway-config")["data"]  # type: ignore[assignment]
    return data


def test_the_council_model_is_served_only_when_enabled(toolchain: dict[str, Path]) -> None:
    off = rendered(PROMPT, {**PROMPT, "name": "lilith"})
    assert "council.json" not in _gateway_data(off)
    assert "custom_provider_map" not in gateway_config(off)["litellm_settings"]

    on = rendered(
        PROMPT, {**PROMPT, "name": "lilith"}, council={"enabled": True, "veto": {"escalateTo": ""}}
    )
    config = gateway_config(on)
    council = next(m for m in config["model_list"] if m["model_name"] == "council")
    assert council["litellm_params"]["model"] == "archon/council"
    assert council["model_info"]["archon_mode"] == "council"
    assert council["litellm_params"]["timeout"] == 900
    # LiteLLM imports the handler through the hook, which puts its folder on sys.path first.
    assert config["litellm_settings"]["custom_provider_map"] == [
        {"provider": "archon", "custom_handler": "archon_hook.council_handler"}
    ]


def test_the_gateway_carries_the_engine_and_the_settings(toolchain: dict[str, Path]) -> None:
    from archon.paths import chart_dir

    objects = rendered(files=(COUNCIL_VALUES,))
    data = _gateway_data(objects)
    files = chart_dir() / "files"
    from archon.gateway.config import COUNCIL_MODULES, HOOK

    for name in (*COUNCIL_MODULES, HOOK):
        assert data[name].strip() == (files / name).read_text(encoding="utf-8").strip(), name
    settings = json.loads(data["council.json"])
    # The router and the embedding archetype answer no question themselves.
    assert settings["members"] == ["maat", "lilith", "thoth", "isis", "phoenix"]
    assert settings["router"]["archetype"] == "roc"
    assert settings["memory"]["enabled"] and settings["memory"]["embeddingModel"] == "embed"
    assert settings["memory"]["url"] == "http://archon-qdrant:6333"
    assert settings["gate"]["invariants"] and settings["veto"]["escalateTo"] == "phoenix"
    assert settings["contextTokens"] == 6144, "the aggregator's server context"
    embed = next(m for m in gateway_config(objects)["model_list"] if m["model_name"] == "embed")
    assert embed["model_info"]["archon_runner"] == "pooling"

    from archon.council import Settings

    assert Settings.from_dict(settings).members == tuple(settings["members"])


def test_the_gateway_pod_gets_the_council_env_and_rolls_on_change(
    toolchain: dict[str, Path],
) -> None:
    objects = rendered(files=(COUNCIL_VALUES,), apiKey={"enabled": True})
    gateway = one(objects, "Deployment", "-gateway")
    pod = gateway["spec"]["template"]
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["ARCHON_COUNCIL_FILE"]["value"] == "/etc/litellm/council.json"
    assert env["ARCHON_COUNCIL_GATEWAY_URL"]["value"] == "http://127.0.0.1:4000"
    assert env["ARCHON_QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    before = pod["metadata"]["annotations"]["checksum/council"]
    changed = rendered(
        files=(COUNCIL_VALUES,),
        apiKey={"enabled": True},
        council={"gate": {"invariants": ["Answer in English."]}},
    )
    after = one(changed, "Deployment", "-gateway")["spec"]["template"]["metadata"]["annotations"]
    assert after["checksum/council"] != before, "new settings roll the gateway"
