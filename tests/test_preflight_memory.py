"""Memory arithmetic on hand-checked examples (tools/archon/preflight/memory.py)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from archon.preflight import check_values
from archon.preflight.catalog import load_catalog
from archon.preflight.explain import steps
from archon.preflight.memory import (
    GIB,
    Engine,
    GpuBudget,
    activation_gib,
    batch_defaults,
    estimate,
    estimate_gpu,
    kv_bytes_per_token,
    lora_gib,
    weights_gib,
)
from archon.preflight.versions import VllmVersion

SEED = "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4"
V0191 = VllmVersion.parse("v0.19.1")
assert V0191 is not None


def seed_engine(**changes: object) -> Engine:
    engine = Engine(model=load_catalog().find(SEED), version=V0191, max_model_len=8192)
    return replace(engine, **changes)  # type: ignore[arg-type]


def test_kv_bytes_per_token_14b_is_192_kib() -> None:
    # 2 (K,V) x 48 layers x 8 KV heads x 128 head_dim x 2 bytes
    model = load_catalog().find(SEED)
    assert kv_bytes_per_token(model) == 2 * 48 * 8 * 128 * 2 == 196608
    assert 8192 * kv_bytes_per_token(model) / GIB == pytest.approx(1.5)


def test_kv_bytes_fp8_halves_and_tp_splits_heads() -> None:
    model = load_catalog().find(SEED)
    assert kv_bytes_per_token(model, "fp8") == 98304
    assert kv_bytes_per_token(model, "auto", tp=2) == 98304
    # 0.5B has 2 KV heads: at TP=4 each rank keeps a replicated head, not half of one
    small = load_catalog().find("Qwen/Qwen2.5-Coder-0.5B-Instruct")
    assert kv_bytes_per_token(small, tp=4) == 2 * 24 * 1 * 64 * 2


def test_kv_bytes_mla_caches_one_latent_per_layer() -> None:
    r1 = load_catalog().find("deepseek-ai/DeepSeek-R1")
    assert kv_bytes_per_token(r1) == 61 * (512 + 64) * 2
    assert kv_bytes_per_token(r1, tp=8) == kv_bytes_per_token(r1)


def test_weights_are_checkpoint_gb_over_1_0737_split_by_tp() -> None:
    model = load_catalog().find(SEED)  # 9.98 GB listed
    assert weights_gib(model) == pytest.approx(9.98 / 1.073741824, rel=1e-6)
    assert weights_gib(model, tp=2) == pytest.approx(9.98 / 1.073741824 / 2, rel=1e-6)
    # the estimate adds the rope cache every rank builds whole at load (rotary_embedding/base.py
    # `register_buffer("cos_sin_cache", ...)`): 32768 positions x head dim 128 x 2 B
    rope = 32768 * 128 * 2 / 2**30
    for tp in (1, 2):
        engine = Engine(model=model, version=V0191, tensor_parallel_size=tp, max_model_len=4096)
        est = estimate(engine, GpuBudget("H100", 79.18, arch="sm_90"))
        assert est.weights_gib == pytest.approx(9.98 / 1.073741824 / tp + rope, rel=1e-6)


def test_batch_defaults_follow_vllm_engine_and_card_size() -> None:
    small = GpuBudget("RTX 5080", 15.48)
    large = GpuBudget("H100", 79.1)
    a100 = GpuBudget("A100 80GB", 79.5)
    assert batch_defaults(seed_engine(), small) == (2048, 256, True)
    assert batch_defaults(seed_engine(), large) == (8192, 1024, True)
    assert batch_defaults(seed_engine(), a100) == (2048, 256, True)
    old = seed_engine(version=VllmVersion.parse("0.6.4"), max_model_len=20000)
    assert batch_defaults(old, small) == (20000, 256, False)  # V0: one whole prompt per batch
    long_ctx = seed_engine(version=VllmVersion.parse("0.6.4"), max_model_len=35000)
    assert batch_defaults(long_ctx, small) == (512, 256, True)  # V0 chunked prefill above 32K


def test_activation_v1_is_the_larger_of_forward_and_sampler() -> None:
    model = load_catalog().find(SEED)
    sampler_heavy = activation_gib(model, 2048, 256, engine="v1", version=(0, 16, 0))
    assert sampler_heavy == pytest.approx(9.7 * 256 * 152064 * 4 / GIB)
    # from v0.17 the top-k/top-p pass is a Triton kernel (tests/test_preflight_releases.py)
    assert activation_gib(model, 2048, 256, engine="v1") == pytest.approx(
        3.9 * 256 * 152064 * 4 / GIB
    )
    few_seqs = activation_gib(model, 2048, 8, engine="v1")
    assert few_seqs == pytest.approx(2048 * 2 * (3 * 13824 + 2 * 5120) / GIB)
    assert activation_gib(model, 8192, 8, engine="v1") > few_seqs


def test_flashinfer_sampler_needs_a_fraction_of_the_native_sort() -> None:
    # vllm/v1/sample/ops/topk_topp_sampler.py: forward_native sorts the [requests x vocab]
    # logits, forward_cuda ("Using FlashInfer for top-p & top-k sampling.") does not; off by
    # default since v0.11.1 (vllm-project/vllm#26859), VLLM_USE_FLASHINFER_SAMPLER=1 turns it on
    model = load_catalog().find(SEED)
    native = activation_gib(model, 2048, 256, engine="v1", version=(0, 16, 0))
    kernel = activation_gib(model, 2048, 256, engine="v1", flashinfer_sampler=True)
    assert kernel == pytest.approx(3.0 * 256 * 152064 * 4 / GIB)
    assert kernel < native / 3
    # V0 and pooling runs have no V1 sampler pass to change
    assert activation_gib(model, 2048, 256, engine="v0", flashinfer_sampler=True) == (
        activation_gib(model, 2048, 256, engine="v0")
    )
    values = {
        "image": {"tag": "v0.19.1"},
        "gpu": {"profile": "RTX 5080"},
        "model": {"name": SEED, "maxModelLen": 8192},
    }
    default = check_values(values).estimate
    on = check_values(
        {**values, "extraEnv": [{"name": "VLLM_USE_FLASHINFER_SAMPLER", "value": "1"}]}
    ).estimate
    off = check_values(
        {**values, "extraEnv": [{"name": "VLLM_USE_FLASHINFER_SAMPLER", "value": "0"}]}
    ).estimate
    assert default is not None and on is not None and off is not None
    assert on.activation_gib < default.activation_gib == off.activation_gib
    assert on.kv_cache_tokens > default.kv_cache_tokens


def test_lora_slot_is_about_100_mib_for_14b_rank_16() -> None:
    model = load_catalog().find(SEED)
    per_slot = lora_gib(model, 1, 16)
    assert 0.09 < per_slot < 0.14  # reference: ~130 MiB per rank-16 slot on a 14B model
    assert lora_gib(model, 4, 16) == pytest.approx(4 * per_slot)
    assert lora_gib(model, 0, 16) == 0


def test_seed_default_fails_on_rtx_5070_and_passes_on_rtx_5080() -> None:
    on_5070 = estimate(seed_engine(), GpuBudget("RTX 5070", (12227 - 450) / 1024))
    assert on_5070.failure == "kv_too_small"
    assert 0 < on_5070.kv_cache_tokens < 8192
    # before v0.17 the sampler's sort left no cache memory at all
    old = estimate(
        seed_engine(version=VllmVersion.parse("v0.16.0")),
        GpuBudget("RTX 5070", (12227 - 450) / 1024),
    )
    assert old.failure == "no_cache_memory" and old.kv_cache_tokens == 0
    on_5080 = estimate(seed_engine(), GpuBudget("RTX 5080", (16303 - 450) / 1024, 960))
    assert on_5080.starts
    assert on_5080.kv_cache_tokens >= 8192 and on_5080.kv_cache_tokens % 16 == 0
    assert on_5080.gpu_blocks * 16 == on_5080.kv_cache_tokens
    assert on_5080.max_concurrency == pytest.approx(on_5080.kv_cache_tokens / 8192)
    assert on_5080.max_model_len_fit >= 8192
    assert on_5080.min_utilization is not None and on_5080.min_utilization < 0.9
    assert on_5080.decode_tokens_per_s == pytest.approx(960e9 / 9.98e9)


def test_max_model_len_fit_and_min_utilization_are_the_boundaries() -> None:
    gpu = GpuBudget("RTX 5080", (16303 - 450) / 1024)
    est = estimate(seed_engine(), gpu)
    assert estimate(seed_engine(max_model_len=est.max_model_len_fit), gpu).starts
    beyond = est.max_model_len_fit + 16
    if beyond <= 32768:
        assert not estimate(seed_engine(max_model_len=beyond), gpu).starts
    assert est.min_utilization is not None
    assert estimate(seed_engine(gpu_memory_utilization=est.min_utilization), gpu).starts
    lower = round(est.min_utilization - 0.01, 2)
    assert not estimate(seed_engine(gpu_memory_utilization=lower), gpu).starts


def test_cuda_graphs_are_budgeted_from_v0_20_unless_eager() -> None:
    gpu = GpuBudget("RTX 5080", 15.48)
    old = estimate(seed_engine(), gpu)
    new = estimate(seed_engine(version=VllmVersion.parse("0.20.0")), gpu)
    eager = estimate(seed_engine(version=VllmVersion.parse("0.20.0"), enforce_eager=True), gpu)
    assert not old.cudagraph_in_budget and new.cudagraph_in_budget and not eager.cudagraph_in_budget
    assert new.kv_cache_gib == pytest.approx(old.kv_cache_gib - new.cudagraph_gib)
    assert eager.kv_cache_gib == pytest.approx(old.kv_cache_gib)


def test_weights_larger_than_the_card_is_an_oom() -> None:
    big = load_catalog().find("Qwen/Qwen2.5-Coder-32B-Instruct")
    est = estimate(Engine(model=big, version=V0191, max_model_len=8192), GpuBudget("x", 23.5))
    assert est.failure == "oom_weights"


def test_several_engines_share_one_gpu() -> None:
    gpu = GpuBudget("RTX 5090", (32607 - 450) / 1024, desktop_gib=1.0)
    small = Engine(
        model=load_catalog().find("Qwen/Qwen2.5-Coder-1.5B-Instruct"),
        version=V0191,
        gpu_memory_utilization=0.3,
        max_model_len=8192,
    )
    results, left = estimate_gpu(gpu, [small, small, small])
    assert len(results) == 3 and all(r.starts for r in results)
    assert left == pytest.approx(gpu.visible_gib * 0.1 - 1.0)
    _, over = estimate_gpu(gpu, [small] * 4)
    assert over < 0  # the fourth instance finds less free memory than it asks for


def test_online_fp8_loads_about_half_the_16_bit_weights() -> None:
    from archon.preflight import check_values

    def weights(quantization: str) -> float:
        values = {
            "gpu": {"profile": "RTX 5080"},
            "model": {"name": "Qwen/Qwen2.5-Coder-7B-Instruct", "quantization": quantization},
        }
        report = check_values(values)
        assert report.estimate is not None
        return report.estimate.weights_gib

    full, fp8 = weights(""), weights("fp8")
    # linear layers at 1 byte, embeddings and lm_head kept at 16 bits
    assert 0.5 * full < fp8 < 0.65 * full


def test_explain_weights_line_adds_the_rope_cache() -> None:
    # "Model loading took" counts the rotary cos/sin cache (rotary_embedding/base.py
    # `self.register_buffer("cos_sin_cache", cache, persistent=False)`): Gemma 3's 0.56 GiB
    # must be in the arithmetic the weights line prints, or it does not add up to its figure
    model = load_catalog().find("google/gemma-3-12b-it")
    engine = Engine(model=model, version=V0191, max_model_len=8192)
    est = estimate(engine, GpuBudget("H100", 79.18, arch="sm_90"))
    row = next(step for step in steps(engine, est) if step.name == "weights")
    match = re.search(
        r"([\d.]+) GB checkpoint .* x 1e9 / 2\^30 \+ ([\d.]+) GiB rotary cos/sin cache",
        row.arithmetic,
    )
    assert match, row.arithmetic
    checkpoint, rope = float(match.group(1)), float(match.group(2))
    assert rope == pytest.approx(0.56, abs=0.01)
    assert float(row.value.split()[0]) == pytest.approx(checkpoint * 1e9 / 2**30 + rope, abs=0.01)
    assert "rotary_embedding/base.py" in row.source
