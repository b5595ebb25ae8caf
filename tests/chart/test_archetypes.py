"""templates/archetypes: every mode and a mix, LoRA engine settings, instances from the server's
own templates, refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import (
    ARCHETYPES_SCENARIO,
    CHART,
    COUNCIL,
    INSTANCE,
    PROMPT,
    engine_config,
    gateway_config,
    lora,
    one,
    rendered,
)

pytestmark = pytest.mark.slow


def test_prompt_archetypes_need_only_the_gateway(toolchain: dict[str, Path]) -> None:
    objects = rendered(PROMPT, ingress={"enabled": True})
    assert len([o for o in objects if o["kind"] == "Deployment"]) == 2  # server + gateway
    backend = one(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "archon-gateway", "port": {"name": "http"}}
    base, entry = gateway_config(objects)["model_list"]
    assert base["model_name"] == "qwen2.5-coder-14b"
    assert entry["model_name"] == "maat"
    assert entry["litellm_params"]["model"] == "openai/qwen2.5-coder-14b"
    assert entry["litellm_params"]["api_base"] == "http://archon-server:8000/v1"
    assert "enable-lora" not in engine_config(objects)


def test_lora_archetypes_set_the_vllm_lora_engine_options(toolchain: dict[str, Path]) -> None:
    objects = rendered(
        lora("lilith", "someone/lilith-lora", 24), lora("thoth", "/models/adapters/thoth"), PROMPT
    )
    config = engine_config(objects)
    assert config["enable-lora"] is True
    assert config["lora-modules"] == ["lilith=someone/lilith-lora", "thoth=/models/adapters/thoth"]
    assert config["max-loras"] == 2
    assert config["max-lora-rank"] == 32, "rank 24 rounds up to a rank vLLM supports"
    init = one(objects, "Deployment", "-server")["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e.get("value") for e in init["env"]}
    assert env["ARCHON_EXTRA_REPOS"] == '["someone/lilith-lora"]', "paths are not downloaded"
    models = {
        e["model_name"]: e["litellm_params"]["model"] for e in gateway_config(objects)["model_list"]
    }
    assert models == {
        "qwen2.5-coder-14b": "openai/qwen2.5-coder-14b",
        "lilith": "openai/lilith",
        "thoth": "openai/thoth",
        "maat": "openai/qwen2.5-coder-14b",
    }


def test_instances_come_from_the_server_templates(toolchain: dict[str, Path]) -> None:
    objects = rendered(INSTANCE, PROMPT, gpu={"nodeCapacity": 2})
    server = one(objects, "Deployment", "-server")["spec"]["template"]["spec"]
    roc = one(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc.keys() == server.keys()
    vllm, own = server["containers"][0], roc["containers"][0]
    assert own.keys() == vllm.keys()
    for same in ("image", "command", "securityContext", "startupProbe", "ports", "volumeMounts"):
        assert own[same] == vllm[same], same
    assert own["args"][0] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert own["resources"]["requests"] == {
        "cpu": "1",
        "memory": "2Gi",
        "nvidia.com/gpu": 1,
        "ephemeral-storage": "13Gi",  # the scratch volumes + 1Gi
    }
    assert [c["name"] for c in roc["initContainers"]] == ["download"]
    config = engine_config(objects, "archetype-roc")
    assert config["served-model-name"] == "roc" and config["gpu-memory-utilization"] == 0.1
    assert "quantization" not in config, "the 14B model's gptq is not inherited"
    assert config["kv-cache-dtype"] == "auto", "engine policy is inherited"
    service = one(objects, "Service", "-archetype-roc")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "archetype-roc"
    entry = {e["model_name"]: e for e in gateway_config(objects)["model_list"]}["roc"]
    assert entry["litellm_params"]["api_base"] == "http://archon-archetype-roc:8000/v1"
    assert entry["litellm_params"]["model"] == "openai/roc"


def test_the_mixed_scenario_and_the_council(toolchain: dict[str, Path]) -> None:
    objects = rendered(files=(ARCHETYPES_SCENARIO,))
    config = gateway_config(objects)
    names = [e["model_name"] for e in config["model_list"]]
    assert names == ["qwen2.5-coder-14b", "maat", "verdict", "lilith", "thoth", "roc"], (
        "the base model first, disabled phoenix is absent"
    )
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    gateway = one(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in gateway["env"]}
    assert "value" not in env["LITELLM_MASTER_KEY"], "the key comes from a Secret"
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key"
    assert env["ARCHON_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key"
    assert gateway["image"] == "ghcr.io/berriai/litellm:v1.80.11-stable.1"
    data = one(objects, "ConfigMap", "-gateway-config")["data"]
    hook = (CHART / "files" / "archon_hook.py").read_text()
    assert data["archon_hook.py"].rstrip("\n") == hook.rstrip("\n")
    council = gateway_config(rendered(files=(COUNCIL,)))
    assert [e["model_name"] for e in council["model_list"]] == [
        "qwen2.5-coder-14b",
        "maat",
        "lilith",
        "thoth",
        "isis",
        "roc",
        "phoenix",
        "embed",
        "council",
    ]


def test_instances_get_modest_default_resources(toolchain: dict[str, Path]) -> None:
    bare = {k: v for k, v in INSTANCE["instance"].items() if k != "resources"}
    objects = rendered({**INSTANCE, "instance": bare}, gpu={"nodeCapacity": 2})
    roc = one(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": 1, "ephemeral-storage": "13Gi"},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1, "ephemeral-storage": "13Gi"},
    }, "not the 14B server's 4 CPUs / 16Gi"
    server = one(objects, "Deployment", "-server")["spec"]["template"]["spec"]
    assert server["containers"][0]["resources"]["requests"]["memory"] == "16Gi"
    custom = {"requests": {"cpu": "2", "memory": "5Gi"}}
    objects = rendered(
        {**INSTANCE, "instance": bare},
        gpu={"nodeCapacity": 2},
        archetypeDefaults={"resources": custom},
    )
    roc = one(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc["containers"][0]["resources"]["requests"]["memory"] == "5Gi"


def test_impossible_archetype_lists_are_refused(render_error: Callable[..., str]) -> None:
    dup = render_error({"archetypes": [PROMPT, PROMPT]})
    assert 'archetypes[1].name="maat" is also archetypes[0].name' in dup
    off = render_error({"archetypes": [PROMPT], "gateway": {"enabled": False}})
    assert "gateway.enabled=false with enabled archetypes" in off
    gpus = render_error({"archetypes": [INSTANCE]})
    assert "request 2 GPUs but gpu.nodeCapacity=1" in gpus
    missing = render_error({"archetypes": [{"name": "x", "mode": "lora"}]})
    assert "missing property 'lora'" in missing
    bad_name = render_error({"archetypes": [{"name": "Ma'at", "mode": "prompt"}]})
    assert "name" in bad_name


def test_one_pod_claims_cannot_hold_instance_archetypes(
    toolchain: dict[str, Path], render_error: Callable[..., str]
) -> None:
    rwop = {"accessModes": ["ReadWriteOncePod"]}
    err = render_error({"archetypes": [INSTANCE], "gpu": {"nodeCapacity": 2}, "persistence": rwop})
    assert "persistence.accessModes contains ReadWriteOncePod" in err and "roc" in err
    assert "fix: set persistence.accessModes: [ReadWriteOnce]" in err
    assert len(err.strip().splitlines()) <= 3
    # One server pod alone may hold a ReadWriteOncePod claim.
    pvc = one(rendered(persistence=rwop), "PersistentVolumeClaim", "")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]


@pytest.mark.parametrize("key", ["enable-lora", "lora-modules", "max-loras", "max-lora-rank"])
def test_lora_settings_in_extra_config_are_refused_with_lora_archetypes(
    key: str, toolchain: dict[str, Path], render_error: Callable[..., str]
) -> None:
    values = {"model": {"extraConfig": {key: 4}}, "archetypes": [lora("lil", "a/b", 8)]}
    err = render_error(values)
    assert f"model.extraConfig.{key} is set while lora archetypes are enabled" in err
    assert "fix: remove" in err and len(err.strip().splitlines()) <= 3
    # Without a lora archetype they enable LoRA by hand.
    assert engine_config(rendered(model={"extraConfig": {key: 4}}))[key] == 4


def test_the_council_aggregation_fits_the_servers_context() -> None:
    """maat reads every answer in one prompt: the answers' max_tokens, its own and ~800 tokens of
    prompts must fit the 14B server's maxModelLen."""
    council = yaml.safe_load(COUNCIL.read_text())
    # every archetype that writes text (the embedding archetype writes none)
    budget = {
        a["name"]: a["sampling"]["max_tokens"] for a in council["archetypes"] if "sampling" in a
    }
    prompts = 800
    assert sum(budget.values()) + budget["maat"] + prompts <= council["model"]["maxModelLen"]
