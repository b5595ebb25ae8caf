"""The archetypes in the chart, rendered by the real helm: every mode and a mix, LoRA engine
settings, instances from the server's own templates, the gateway switch, refusals, helm test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from archon.render import render_chart

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
CHART = REPO_ROOT / "charts" / "archon"
SCENARIO = CHART / "ci" / "archetypes-values.yaml"
COUNCIL = REPO_ROOT / "values" / "council.yaml"

Obj = dict[str, Any]
PROMPT = {"name": "maat", "mode": "prompt", "systemPrompt": "judge"}
INSTANCE = {
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


def render(*archetypes: Obj, files: tuple[Path, ...] = (), **values: Any) -> list[Obj]:
    overrides = {"archetypes": list(archetypes), **values} if archetypes else values
    return render_chart(files, overrides=overrides or None).objects


def named(objects: list[Obj], kind: str, suffix: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    assert len(found) == 1, f"expected one {kind}*{suffix}, got {len(found)}"
    return found[0]


def engine(objects: list[Obj], component: str = "server") -> Obj:
    config: Obj = yaml.safe_load(
        named(objects, "ConfigMap", f"-{component}-config")["data"]["vllm-config.yaml"]
    )
    return config


def gateway_config(objects: list[Obj]) -> Obj:
    config: Obj = yaml.safe_load(
        named(objects, "ConfigMap", "-gateway-config")["data"]["config.yaml"]
    )
    return config


def helm_error(values: Obj, toolchain: dict[str, Path]) -> str:
    done = subprocess.run(
        [str(toolchain["helm"]), "template", "archon", str(CHART), "-f", "-"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0, "helm rendered values that must be refused"
    return done.stderr


def test_no_archetypes_no_gateway(toolchain: dict[str, Path]) -> None:
    objects = render(ingress={"enabled": True})
    assert not [o for o in objects if "gateway" in o["metadata"]["name"]]
    backend = named(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "archon-server"
    assert "enable-lora" not in engine(objects)


def test_prompt_archetypes_need_only_the_gateway(toolchain: dict[str, Path]) -> None:
    objects = render(PROMPT, ingress={"enabled": True})
    assert len([o for o in objects if o["kind"] == "Deployment"]) == 2  # server + gateway
    backend = named(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"] == {"name": "archon-gateway", "port": {"name": "http"}}
    base, entry = gateway_config(objects)["model_list"]
    assert base["model_name"] == "qwen2.5-coder-14b"
    assert entry["model_name"] == "maat"
    assert entry["litellm_params"]["model"] == "openai/qwen2.5-coder-14b"
    assert entry["litellm_params"]["api_base"] == "http://archon-server:8000/v1"
    assert "enable-lora" not in engine(objects)


def test_lora_archetypes_set_the_vllm_lora_engine_options(toolchain: dict[str, Path]) -> None:
    objects = render(
        lora("lilith", "someone/lilith-lora", 24), lora("thoth", "/models/adapters/thoth"), PROMPT
    )
    config = engine(objects)
    assert config["enable-lora"] is True
    assert config["lora-modules"] == ["lilith=someone/lilith-lora", "thoth=/models/adapters/thoth"]
    assert config["max-loras"] == 2
    assert config["max-lora-rank"] == 32, "rank 24 rounds up to a rank vLLM supports"
    init = named(objects, "Deployment", "-server")["spec"]["template"]["spec"]["initContainers"][0]
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
    objects = render(INSTANCE, PROMPT, gpu={"nodeCapacity": 2})
    server = named(objects, "Deployment", "-server")["spec"]["template"]["spec"]
    roc = named(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc.keys() == server.keys()
    vllm, own = server["containers"][0], roc["containers"][0]
    assert own.keys() == vllm.keys()
    for same in ("image", "command", "securityContext", "startupProbe", "ports", "volumeMounts"):
        assert own[same] == vllm[same], same
    assert own["args"][0] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert own["resources"]["requests"] == {"cpu": "1", "memory": "2Gi", "nvidia.com/gpu": 1}
    assert [c["name"] for c in roc["initContainers"]] == ["download"]
    config = engine(objects, "archetype-roc")
    assert config["served-model-name"] == "roc" and config["gpu-memory-utilization"] == 0.1
    assert "quantization" not in config, "the 14B model's gptq is not inherited"
    assert config["kv-cache-dtype"] == "auto", "engine policy is inherited"
    service = named(objects, "Service", "-archetype-roc")
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "archetype-roc"
    entry = {e["model_name"]: e for e in gateway_config(objects)["model_list"]}["roc"]
    assert entry["litellm_params"]["api_base"] == "http://archon-archetype-roc:8000/v1"
    assert entry["litellm_params"]["model"] == "openai/roc"


def test_the_mixed_scenario_and_the_council(toolchain: dict[str, Path]) -> None:
    objects = render(files=(SCENARIO,))
    config = gateway_config(objects)
    names = [e["model_name"] for e in config["model_list"]]
    assert names == ["qwen2.5-coder-14b", "maat", "verdict", "lilith", "thoth", "roc"], (
        "the base model first, disabled phoenix is absent"
    )
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    gateway = named(objects, "Deployment", "-gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in gateway["env"]}
    assert "value" not in env["LITELLM_MASTER_KEY"], "the key comes from a Secret"
    assert env["LITELLM_MASTER_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key"
    assert env["ARCHON_UPSTREAM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key"
    assert gateway["image"] == "ghcr.io/berriai/litellm:v1.80.11-stable.1"
    data = named(objects, "ConfigMap", "-gateway-config")["data"]
    hook = (REPO_ROOT / "tools" / "archon" / "gateway" / "hook.py").read_text()
    assert data["archon_hook.py"].rstrip("\n") == hook.rstrip("\n")
    council = gateway_config(render(files=(COUNCIL,)))
    assert [e["model_name"] for e in council["model_list"]] == [
        "qwen2.5-coder-14b",
        "maat",
        "lilith",
        "thoth",
        "isis",
        "roc",
        "phoenix",
    ]


def test_helm_test_calls_every_archetype_once(toolchain: dict[str, Path]) -> None:
    objects = render(files=(SCENARIO,))
    pod = named(objects, "Pod", "-test-archetypes")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["ARCHON_ARCHETYPES"]["value"].split() == [
        "maat",
        "verdict",
        "lilith",
        "thoth",
        "roc",
    ]
    assert env["ARCHON_MODEL"]["value"] == "qwen2.5-coder-14b", "the base model is called too"
    assert env["ARCHON_GATEWAY"]["value"] == "archon-gateway"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "/v1/models" in script and "/v1/chat/completions" in script
    assert "for name in ${ARCHON_MODEL} ${ARCHON_ARCHETYPES}" in script
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_the_gateway_always_serves_the_base_model(toolchain: dict[str, Path]) -> None:
    # gateway.enabled: true without archetypes: the Ingress points at the gateway, which must
    # still serve the model (an empty model_list answers nothing).
    objects = render(gateway={"enabled": True}, ingress={"enabled": True})
    backend = named(objects, "Ingress", "")["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend["service"]["name"] == "archon-gateway"
    (base,) = gateway_config(objects)["model_list"]
    assert base["model_name"] == "qwen2.5-coder-14b"
    assert base["litellm_params"]["model"] == "openai/qwen2.5-coder-14b"
    assert base["litellm_params"]["api_base"] == "http://archon-server:8000/v1"
    assert (
        "temperature" not in base["litellm_params"] and "max_tokens" not in base["litellm_params"]
    )
    assert base["model_info"]["archon_mode"] == "base"
    table = json.loads(named(objects, "ConfigMap", "-gateway-config")["data"]["archetypes.json"])
    assert table == {}, "no system prompt for the base model"
    # With archetypes, the base model stays reachable next to them.
    names = [e["model_name"] for e in gateway_config(render(PROMPT))["model_list"]]
    assert names == ["qwen2.5-coder-14b", "maat"]


def test_instances_get_modest_default_resources(toolchain: dict[str, Path]) -> None:
    bare = {k: v for k, v in INSTANCE["instance"].items() if k != "resources"}
    objects = render({**INSTANCE, "instance": bare}, gpu={"nodeCapacity": 2})
    roc = named(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1},
    }, "not the 14B server's 4 CPUs / 16Gi"
    server = named(objects, "Deployment", "-server")["spec"]["template"]["spec"]
    assert server["containers"][0]["resources"]["requests"]["memory"] == "16Gi"
    custom = {"requests": {"cpu": "2", "memory": "5Gi"}}
    objects = render(
        {**INSTANCE, "instance": bare},
        gpu={"nodeCapacity": 2},
        archetypeDefaults={"resources": custom},
    )
    roc = named(objects, "Deployment", "-archetype-roc")["spec"]["template"]["spec"]
    assert roc["containers"][0]["resources"]["requests"]["memory"] == "5Gi"


def test_impossible_archetype_lists_are_refused(toolchain: dict[str, Path]) -> None:
    dup = helm_error({"archetypes": [PROMPT, PROMPT]}, toolchain)
    assert 'archetypes[1].name="maat" is also archetypes[0].name' in dup
    off = helm_error({"archetypes": [PROMPT], "gateway": {"enabled": False}}, toolchain)
    assert "gateway.enabled=false with enabled archetypes" in off
    gpus = helm_error({"archetypes": [INSTANCE]}, toolchain)
    assert "request 2 GPUs but gpu.nodeCapacity=1" in gpus
    missing = helm_error({"archetypes": [{"name": "x", "mode": "lora"}]}, toolchain)
    assert "missing property 'lora'" in missing
    bad_name = helm_error({"archetypes": [{"name": "Ma'at", "mode": "prompt"}]}, toolchain)
    assert "name" in bad_name


def test_one_pod_claims_cannot_hold_instance_archetypes(toolchain: dict[str, Path]) -> None:
    rwop = {"accessModes": ["ReadWriteOncePod"]}
    err = helm_error(
        {"archetypes": [INSTANCE], "gpu": {"nodeCapacity": 2}, "persistence": rwop}, toolchain
    )
    assert "persistence.accessModes contains ReadWriteOncePod" in err and "roc" in err
    assert "fix: set persistence.accessModes: [ReadWriteOnce]" in err
    assert len(err.strip().splitlines()) <= 3
    # One server pod alone may hold a ReadWriteOncePod claim.
    pvc = named(render(persistence=rwop), "PersistentVolumeClaim", "")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOncePod"]


@pytest.mark.parametrize("key", ["enable-lora", "lora-modules", "max-loras", "max-lora-rank"])
def test_lora_settings_in_extra_config_are_refused_with_lora_archetypes(
    key: str, toolchain: dict[str, Path]
) -> None:
    values = {"model": {"extraConfig": {key: 4}}, "archetypes": [lora("lil", "a/b", 8)]}
    err = helm_error(values, toolchain)
    assert f"model.extraConfig.{key} is set while lora archetypes are enabled" in err
    assert "fix: remove" in err and len(err.strip().splitlines()) <= 3
    # Without a lora archetype they enable LoRA by hand.
    assert engine(render(model={"extraConfig": {key: 4}}))[key] == 4


def test_the_council_aggregation_fits_the_servers_context() -> None:
    """maat reads every answer in one prompt: the answers' max_tokens, its own and ~800 tokens of
    prompts must fit the 14B server's maxModelLen."""
    council = yaml.safe_load(COUNCIL.read_text())
    budget = {a["name"]: a["sampling"]["max_tokens"] for a in council["archetypes"]}
    prompts = 800
    assert sum(budget.values()) + budget["maat"] + prompts <= council["model"]["maxModelLen"]
