"""Each compatibility rule, both ways (tools/archon/data/compat/rules.yaml)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from archon.preflight.catalog import load_catalog
from archon.preflight.compat import Setup, evaluate, load_rules
from archon.preflight.profiles import load_profiles
from archon.preflight.versions import VllmVersion


def setup(
    gpu: str = "RTX 5080", model: str = "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4", **changes: Any
) -> Setup:
    profile = load_profiles().find(gpu)
    amd = profile.vendor == "amd"
    repo = "vllm/vllm-openai-rocm" if amd else "vllm/vllm-openai"
    base = Setup(
        gpu=profile,
        model=load_catalog().find(model),
        version=VllmVersion.parse("v0.19.1"),  # type: ignore[arg-type]
        vendor_value=profile.vendor,
        image=f"{repo}:v0.19.1",
        image_repository=repo,
        image_tag="v0.19.1",
        quantization_value="gptq",
        dtype="auto",
        kv_cache_dtype="auto",
        max_model_len=8192,
        tensor_parallel_size=1,
        gpu_count=1,
        lora=False,
    )
    if "version" in changes and isinstance(changes["version"], str):
        changes["version"] = VllmVersion.parse(changes["version"]) or VllmVersion.newest(
            changes["version"]
        )
    return replace(base, **changes)


def rules_hit(s: Setup) -> dict[str, str]:
    return {f.rule: f.level for f in evaluate(s)}


def test_rules_file_loads_and_each_rule_has_a_source() -> None:
    rules = load_rules()
    assert len(rules) >= 15
    assert all(rule.get("source") for rule in rules)


def test_clean_default_setup_has_no_findings() -> None:
    assert rules_hit(setup()) == {}
    assert (
        rules_hit(
            setup(
                "RX 7900 XTX", quantization_value="awq", model="Qwen/Qwen2.5-Coder-14B-Instruct-AWQ"
            )
        )
        == {}
    )


def test_blackwell_needs_a_cuda_12_8_build() -> None:
    assert rules_hit(setup(version="v0.4.0"))["blackwell-needs-cuda-12-8"] == "FAIL"
    assert "blackwell-needs-cuda-12-8" not in rules_hit(setup(version="v0.9.2"))
    assert "blackwell-needs-cuda-12-8" not in rules_hit(setup("RTX 4090", version="v0.4.0"))


def test_early_0_10_blackwell_regression_warns() -> None:
    assert rules_hit(setup(version="v0.10.0"))["blackwell-early-0-10-regression"] == "WARN"
    assert "blackwell-early-0-10-regression" not in rules_hit(setup(version="v0.10.2"))


def test_bf16_needs_ampere() -> None:
    bf16 = "Qwen/Qwen2.5-Coder-7B-Instruct"
    hit = rules_hit(setup("Tesla T4", model=bf16, quantization_value=""))
    assert hit["bf16-needs-cc-8-0"] == "FAIL"
    assert "bf16-needs-cc-8-0" not in rules_hit(
        setup("Tesla T4", model=bf16, quantization_value="", dtype="float16")
    )
    assert "bf16-needs-cc-8-0" not in rules_hit(
        setup("RTX 3090", model=bf16, quantization_value="")
    )


def test_gptq_and_awq_checkpoints_run_in_half_precision() -> None:
    # The 4-bit kernels take float16 activations: no bf16 failure on a pre-Ampere card.
    for model in (
        "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4",
        "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
    ):
        for written in ("", "gptq", "awq"):
            assert "bf16-needs-cc-8-0" not in rules_hit(
                setup("Tesla T4", model=model, quantization_value=written)
            )


def test_marlin_needs_cc_8_0() -> None:
    assert rules_hit(setup("Tesla T4", dtype="float16"))["marlin-needs-cc-8-0"] == "WARN"
    assert "marlin-needs-cc-8-0" not in rules_hit(setup("RTX 3090"))


def test_fp8_weights_need_ada_and_at_least_ampere() -> None:
    fp8 = "RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic"
    assert (
        rules_hit(setup("RTX 3090", model=fp8, quantization_value="fp8"))["fp8-w8a8-needs-cc-8-9"]
        == "WARN"
    )
    assert (
        rules_hit(setup("Tesla T4", model=fp8, quantization_value="fp8", dtype="float16"))[
            "fp8-needs-cc-8-0"
        ]
        == "FAIL"
    )
    assert not {"fp8-w8a8-needs-cc-8-9", "fp8-needs-cc-8-0"} & set(
        rules_hit(setup("RTX 4090", model=fp8, quantization_value="fp8"))
    )


def test_vendor_and_image_must_match() -> None:
    cuda_on_amd = setup(
        "RX 7900 XTX", image_repository="vllm/vllm-openai", image="vllm/vllm-openai:v0.19.1"
    )
    assert rules_hit(cuda_on_amd)["amd-needs-rocm-image"] == "FAIL"
    rocm_on_nvidia = setup(image_repository="vllm/vllm-openai-rocm")
    assert rules_hit(rocm_on_nvidia)["nvidia-needs-cuda-image"] == "FAIL"
    assert rules_hit(setup(vendor_value="amd"))["vendor-value-matches-card"] == "FAIL"
    assert "vendor-value-matches-card" not in rules_hit(setup(vendor_value="nvidia"))


def test_rocm_targets() -> None:
    assert rules_hit(setup("RX 7600 XT"))["rocm-supported-gfx"] == "FAIL"  # gfx1102
    for card in ("RX 7800 XT", "RX 7900 GRE", "RX 9070 XT"):
        assert "rocm-supported-gfx" not in rules_hit(setup(card))


def test_rocm_kv_cache_fp8_warns() -> None:
    assert (
        rules_hit(setup("RX 7900 XTX", kv_cache_dtype="fp8"))["rocm-kv-fp8-custom-paged-attention"]
        == "WARN"
    )
    assert "rocm-kv-fp8-custom-paged-attention" not in rules_hit(setup(kv_cache_dtype="fp8"))


def test_lora_with_quantization() -> None:
    assert "lora-supported-quantization" not in rules_hit(setup(lora=True))
    gpt_oss = setup("H100", model="openai/gpt-oss-20b", quantization_value="mxfp4", lora=True)
    assert rules_hit(gpt_oss)["lora-supported-quantization"] == "WARN"
    assert "lora-supported-quantization" not in rules_hit(replace(gpt_oss, lora=False))


def test_max_model_len_beyond_positions() -> None:
    assert rules_hit(setup(max_model_len=65536))["max-model-len-beyond-positions"] == "FAIL"
    assert "max-model-len-beyond-positions" not in rules_hit(setup(max_model_len=32768))
    assert "max-model-len-beyond-positions" not in rules_hit(
        setup(max_model_len=65536, rope_scaling=True)
    )


def test_quantization_must_match_the_checkpoint() -> None:
    assert rules_hit(setup(quantization_value="awq"))["quantization-matches-checkpoint"] == "FAIL"
    assert "quantization-matches-checkpoint" not in rules_hit(
        setup(quantization_value="gptq_marlin")
    )
    assert "quantization-matches-checkpoint" not in rules_hit(setup(quantization_value=""))


def test_model_needs_a_recent_enough_vllm() -> None:
    qwen3 = dict(model="Qwen/Qwen3-32B", quantization_value="")
    assert rules_hit(setup("H100", version="v0.8.0", **qwen3))["model-needs-newer-vllm"] == "FAIL"
    assert "model-needs-newer-vllm" not in rules_hit(setup("H100", version="v0.8.4", **qwen3))


def test_tensor_parallel_limits() -> None:
    hit = rules_hit(setup(tensor_parallel_size=2))
    assert hit["tensor-parallel-beyond-gpus"] == "FAIL"
    assert "tensor-parallel-beyond-gpus" not in rules_hit(
        setup(tensor_parallel_size=2, gpu_count=2)
    )
    assert (
        rules_hit(setup(tensor_parallel_size=3, gpu_count=3))["tensor-parallel-divides-heads"]
        == "FAIL"
    )  # 40 heads
    assert "tensor-parallel-divides-heads" not in rules_hit(
        setup(tensor_parallel_size=2, gpu_count=2)
    )


def test_unpinned_tag_warns() -> None:
    assert rules_hit(setup(version="latest", image_tag="latest"))["image-tag-unpinned"] == "WARN"
    assert "image-tag-unpinned" not in rules_hit(setup())


@pytest.mark.parametrize("rule", ["blackwell-needs-cuda-12-8", "rocm-supported-gfx"])
def test_findings_are_single_lines_with_key_and_fix(rule: str) -> None:
    s = setup(version="v0.4.0") if rule.startswith("blackwell") else setup("RX 7600 XT")
    finding = next(f for f in evaluate(s) if f.rule == rule)
    line = finding.problem.line()
    assert "\n" not in line and "; fix: " in line and line.startswith(finding.problem.key)


def test_online_quantization_of_a_16_bit_checkpoint_is_allowed() -> None:
    bf16 = "Qwen/Qwen2.5-Coder-7B-Instruct"
    for written in ("fp8", "bitsandbytes"):
        hit = rules_hit(setup(model=bf16, quantization_value=written))
        assert "quantization-matches-checkpoint" not in hit, written
    # A pre-quantized format cannot be produced while loading: still refused.
    assert (
        rules_hit(setup(model=bf16, quantization_value="awq"))["quantization-matches-checkpoint"]
        == "FAIL"
    )


def _settings(*args: str, env: dict[str, str] | None = None) -> Any:
    from archon.preflight.settings import read_settings

    values: dict[str, Any] = {"model": {"extraArgs": list(args)}}
    if env:
        values["extraEnv"] = [{"name": k, "value": v} for k, v in env.items()]
    return read_settings(values)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--data-parallel-size", "1.5"], "--data-parallel-size '1.5'"),
        (["-pp", "2k"], "--pipeline-parallel-size '2k'"),
        (["--tensor-parallel-size=2.0"], "--tensor-parallel-size '2.0'"),
    ],
)
def test_parallel_sizes_are_plain_integers(args: list[str], flag: str) -> None:
    # argparse `type=int` in vllm/engine/arg_utils.py: no suffixes, no fractions
    (problem,) = _settings(*args).problems
    assert problem.key == "model.extraArgs" and problem.message.startswith(flag)
    assert "whole number >= 1" in problem.fix
    assert _settings("-pp", "2").pipeline_parallel_size == 2
    # the token budgets keep vLLM's human-readable integers
    assert _settings("--max-num-batched-tokens", "2k").max_num_batched_tokens == 2000


def test_a_bare_parallel_flag_needs_a_number() -> None:
    (problem,) = _settings("-pp").problems
    assert problem.message == "--pipeline-parallel-size needs a number"
    assert "True" not in problem.line()


def test_more_stages_than_layers_names_the_flag() -> None:
    layers = load_catalog().find("Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4").layers
    (finding,) = [
        f for f in evaluate(setup(pipeline_parallel_size=99, gpu_count=99)) if f.level == "FAIL"
    ]
    assert finding.rule == "pipeline-beyond-layers"
    assert finding.problem.key == "model.extraArgs"
    assert finding.problem.fix == f"set --pipeline-parallel-size <= {layers}"


def test_a_partition_is_refused_only_where_get_pp_indices_refuses() -> None:
    # vllm/distributed/utils.py get_pp_indices: int() of each entry, then the count and the sum
    assert not _settings("-pp", "2", env={"VLLM_PP_LAYER_PARTITION": "0,48"}).problems
    (bad,) = _settings("-pp", "2", env={"VLLM_PP_LAYER_PARTITION": "16;32"}).problems
    assert bad.key == "extraEnv" and "vLLM refuses to start" in bad.message
    # a stage without layers is accepted by vLLM; the preflight says it cannot size it
    findings = evaluate(setup(pipeline_parallel_size=2, gpu_count=2, pp_layer_partition=(0, 48)))
    (warn,) = [f for f in findings if f.rule == "pp-stage-without-layers"]
    assert warn.level == "WARN" and "vLLM accepts it" in warn.problem.message


def _engine_of(tag: str, use_v1: str | None) -> tuple[str, list[str]]:
    from archon.preflight import check_values

    values: dict[str, Any] = {
        "image": {"tag": tag},
        "gpu": {"profile": "RTX 4090"},
        "model": {"name": "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4"},
    }
    if use_v1 is not None:
        values["extraEnv"] = [{"name": "VLLM_USE_V1", "value": use_v1}]
    report = check_values(values)
    assert report.estimate is not None
    return report.estimate.engine, [f.problem.key for f in report.findings if f.rule == "flags"]


@pytest.mark.parametrize(
    ("tag", "use_v1", "engine", "flagged"),
    [
        ("v0.8.4", None, "v1", []),
        # vllm/engine/arg_utils.py create_engine_config: "If VLLM_USE_V1=0, we disable V1"
        ("v0.8.4", "0", "v0", []),
        ("v0.10.2", "0", "v0", []),
        # v0.11.0 has no V0 engine; its API server asserts envs.VLLM_USE_V1
        ("v0.11.0", "0", "v1", ["extraEnv"]),
        # v0.11.1 no longer reads the variable
        ("v0.19.1", "0", "v1", []),
    ],
)
def test_vllm_use_v1_0_selects_v0_where_the_release_has_it(
    tag: str, use_v1: str | None, engine: str, flagged: list[str]
) -> None:
    assert _engine_of(tag, use_v1) == (engine, flagged)
