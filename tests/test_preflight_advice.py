"""What the user sees when it does not fit: changes with the figures they reach, and --explain."""

from __future__ import annotations

import json
from typing import Any

import pytest

from archon.preflight import check_values
from archon.preflight.advice import needed_gib
from archon.preflight.explain import steps

pytestmark = pytest.mark.usefixtures("offline_hub_cache")


def scenario(model: str, gpu: str, **settings: Any) -> dict[str, Any]:
    return {
        "image": {"tag": "v0.19.1"},
        "gpu": {"profile": gpu},
        "model": {"name": model, "quantization": "", "maxModelLen": 8192, **settings},
    }


def test_every_offered_change_is_estimated_and_fits() -> None:
    report = check_values(
        scenario(
            "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4",
            "RTX 5070",
            maxModelLen=32768,
            gpuMemoryUtilization=0.65,
        )
    )
    assert report.verdict == "FAIL"
    keys = [fix.key for fix in report.fixes]
    assert keys[:2] == ["model.maxModelLen", "model.kvCacheDtype"]
    assert {"model.maxNumSeqs", "model.gpuMemoryUtilization", ""} <= set(keys)
    for fix in report.fixes:
        assert fix.estimate.starts, fix.change
        assert needed_gib(fix.estimate) <= fix.estimate.usable_gib + 1e-9
    shorter = next(f for f in report.fixes if f.key == "model.maxModelLen")
    assert shorter.value < 32768 and shorter.estimate.max_model_len == shorter.value
    # the FAIL line names each change with the memory it would need
    fail = report.failures[0]
    assert f"set model.maxModelLen {shorter.value} (needs " in fail.fix
    data = report.as_dict()
    assert data["fixes"][0]["needs_gib"] <= data["fixes"][0]["usable_gib"]


def test_a_16_bit_model_gets_its_4_bit_build_and_a_card() -> None:
    report = check_values(scenario("Qwen/Qwen2.5-Coder-7B-Instruct", "RTX 5080"))
    builds = [f for f in report.fixes if f.key == "model.name"]
    assert builds and builds[0].value.startswith("Qwen/Qwen2.5-Coder-7B-Instruct-")
    assert builds[0].estimate.starts
    cards = [f for f in report.fixes if not f.key]
    assert [c.estimate.gpu for c in cards] == ["RTX 4090"]
    # no consumer card holds the 16-bit 14B model: only the 4-bit build is offered, and the
    # FAIL line says so
    big = check_values(scenario("Qwen/Qwen2.5-Coder-14B-Instruct", "RTX 5080"))
    assert big.estimate is not None and big.estimate.failure == "oom_weights"
    assert [f.key for f in big.fixes] == ["model.name"]
    assert big.failures[0].fix.endswith("or use a larger card or more GPUs")


def test_a_14b_with_a_large_batch_on_a_12_gb_card_gets_a_combined_change_and_a_card() -> None:
    # 512 sequences and 4096 batched tokens: no single cut of either is enough, so the combined
    # change (fewer sequences and an fp8 cache) is offered, and the next card up
    report = check_values(
        scenario(
            "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4",
            "RTX 5070",
            maxNumSeqs=512,
            maxNumBatchedTokens=4096,
        )
    )
    changes = [f.change for f in report.fixes]
    assert any("model.maxNumSeqs" in c and "model.kvCacheDtype fp8" in c for c in changes)
    assert changes[-1] == "use a 16 GB card such as RTX 5070 Ti"


def test_explain_names_the_vllm_source_of_every_line(run_cli) -> None:  # type: ignore[no-untyped-def]
    report = check_values(scenario("openai/gpt-oss-20b", "RTX 5090"))
    assert report.engine is not None and report.estimate is not None
    rows = steps(report.engine, report.estimate)
    assert all("vllm/" in row.source for row in rows)
    names = [row.name for row in rows]
    assert names[:3] == ["usable", "weights", "activation peak"]
    groups = next(row for row in rows if row.name == "KV cache groups")
    assert (
        "1 full-attention + 1 sliding-window groups of 12 layers (window 128)" in groups.arithmetic
    )
    result = run_cli("preflight", "--gpu", "RTX 5080", "--explain", "--output", "json")
    data = json.loads(result.out)
    assert result.code in (0, 1), result.err
    if data.get("gpu"):  # the chart schema accepts its own defaults
        assert data["explain"][0]["step"] == "usable"
        assert data["model_source"] == "catalog"


def test_a_context_cut_below_half_also_gets_the_combined_change() -> None:
    # the chart's defaults on a 12 GB card: the only single change that fits keeps 1280 of the
    # 8192 tokens asked for, so fewer sequences with an fp8 cache is offered beside it
    report = check_values(scenario("Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4", "RTX 5070"))
    assert report.verdict == "FAIL"
    changes = [fix.change for fix in report.fixes]
    shorter = next(f for f in report.fixes if f.key == "model.maxModelLen")
    assert shorter.value * 2 < 8192
    combined = next(c for c in changes if " and " in c)
    assert "model.maxNumSeqs 16" in combined and "model.kvCacheDtype fp8" in combined
    assert changes.index(combined) == changes.index(shorter.change) + 1
    # a length cut that keeps most of the context is enough on its own
    roomy = check_values(
        scenario("Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4", "RTX 5080", maxModelLen=32768)
    )
    assert roomy.verdict == "FAIL" and roomy.fixes[0].key == "model.maxModelLen"
    assert not any(" and " in fix.change for fix in roomy.fixes)
