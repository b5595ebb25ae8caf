"""The archetypes' GPU budget: LoRA slots on the shared server, instances beside it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from archon.preflight import check_values
from archon.preflight.archetypes import instances, lora_slots
from archon.values import load_values, merge

REPO = Path(__file__).resolve().parent.parent


def values_with(**overrides: Any) -> dict[str, Any]:
    return merge(load_values([]), overrides)


def router(util: float = 0.12, max_len: int = 4096, **extra: Any) -> dict[str, Any]:
    return {
        "name": "roc",
        "mode": "instance",
        "systemPrompt": "route",
        "instance": {
            "model": {
                "name": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
                "maxModelLen": max_len,
                "gpuMemoryUtilization": util,
                **extra,
            }
        },
    }


def lora(name: str, rank: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "mode": "lora", "lora": {"source": f"org/{name}"}}
    if rank is not None:
        entry["lora"]["rank"] = rank
    return entry


@pytest.mark.parametrize(
    ("ranks", "expected"),
    [([], (0, 16)), ([None], (1, 16)), ([8, 20], (2, 32)), ([64, 64, 65], (3, 128))],
)
def test_lora_slots_follow_the_chart(ranks: list[int | None], expected: tuple[int, int]) -> None:
    values = {"archetypes": [lora(f"a{i}", r) for i, r in enumerate(ranks)]}
    assert lora_slots(values) == expected


def test_disabled_archetypes_cost_nothing() -> None:
    values = {"archetypes": [dict(lora("a", 8), enabled=False), dict(router(), enabled=False)]}
    assert lora_slots(values) == (0, 16)
    assert instances(values) == []


def test_instance_inherits_engine_settings_but_not_the_checkpoint() -> None:
    values = values_with(model={"maxNumSeqs": 8, "kvCacheDtype": "fp8"}, archetypes=[router()])
    (instance,) = instances(values)
    model = instance.values["model"]
    assert model["name"] == "Qwen/Qwen2.5-Coder-0.5B-Instruct"
    assert model["quantization"] == ""  # not the 14B model's gptq
    assert model["servedModelName"] == "roc"
    assert model["maxNumSeqs"] == 8 and model["kvCacheDtype"] == "fp8"  # inherited
    assert model["gpuMemoryUtilization"] == 0.12


def test_lora_archetypes_reserve_slots_on_the_shared_server() -> None:
    gpu = "RTX 5080"
    plain = check_values(values_with(), gpu=gpu)
    with_lora = check_values(values_with(archetypes=[lora("critic", 64)]), gpu=gpu)
    assert plain.estimate is not None and with_lora.estimate is not None
    assert plain.estimate.lora_gib == 0
    assert with_lora.estimate.lora_gib > 0
    assert with_lora.estimate.kv_cache_tokens < plain.estimate.kv_cache_tokens


def test_shipped_council_fits_an_rtx_5080() -> None:
    report = check_values(load_values([REPO / "values" / "council.yaml"]))
    assert report.verdict in ("PASS", "WARN"), [p.line() for p in report.problems]
    roc, embed = report.instances
    assert roc["archetype"] == "roc"
    assert roc["kv_cache_tokens"] > 4096
    assert embed["archetype"] == "embed"  # the memory's embedding model is budgeted too
    assert embed["kv_cache_tokens"] > 1024


def test_shares_above_the_card_fail_naming_every_engine() -> None:
    values = values_with(
        gpu={"profile": "RTX 5080", "nodeCapacity": 2},
        model={"gpuMemoryUtilization": 0.85},
        archetypes=[router(util=0.12)],
    )
    report = check_values(values)
    assert report.verdict == "FAIL"
    (problem,) = [p for p in report.failures if p.key == "archetypes"]
    assert "server 0.85 + roc 0.12 = 0.97" in problem.message
    assert "gpuMemoryUtilization" in problem.fix


def test_instance_too_small_for_its_context_fails_on_its_own_key() -> None:
    values = values_with(
        gpu={"profile": "RTX 5080", "nodeCapacity": 2},
        model={"gpuMemoryUtilization": 0.8},
        archetypes=[router(util=0.05, max_len=32768)],
    )
    report = check_values(values)
    keys = [p.key for p in report.failures]
    assert "archetypes[0].instance.model.maxModelLen" in keys
    assert "model.maxModelLen" not in keys  # the shared server itself is fine


def test_instances_need_gpu_pods_the_node_can_place() -> None:
    values = values_with(gpu={"profile": "RTX 5080"}, archetypes=[router()])
    report = check_values(copy.deepcopy(values))
    (problem,) = [p for p in report.failures if p.key == "gpu.nodeCapacity"]
    assert "2 GPU pods" in problem.message
    assert "time-slicing" in problem.fix


def test_instance_models_go_through_the_compatibility_rules() -> None:
    # A bf16 router checkpoint cannot be served as AWQ: refused on the instance's own key.
    values = values_with(
        gpu={"profile": "RTX 5080", "nodeCapacity": 2},
        model={"gpuMemoryUtilization": 0.8},
        archetypes=[router(quantization="awq")],
    )
    report = check_values(values)
    (problem,) = [p for p in report.failures if "quantization" in p.key]
    assert problem.key == "archetypes[0].instance.model.quantization"
    assert problem.message.startswith("archetype roc: ")
