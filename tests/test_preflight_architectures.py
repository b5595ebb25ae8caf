"""Architectures modelled as vLLM does, each against the upstream arithmetic it mirrors
(vllm-project/vllm; the file and function are named in each test)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from archon.preflight import check_values
from archon.preflight.catalog import ModelSpec, load_catalog, spec_from_config
from archon.preflight.memory import (
    BLOCK_SIZE,
    GIB,
    Engine,
    GpuBudget,
    activation_gib,
    estimate,
    kv_bytes_per_token,
    kv_layout,
    mxfp4_backend,
    mxfp4_padding,
    rope_cache_gib,
    weights_gib,
)
from archon.preflight.versions import VllmVersion

V0191 = VllmVersion.parse("v0.19.1")
assert V0191 is not None
H100 = GpuBudget("H100", 79.18)


pytestmark = pytest.mark.usefixtures("offline_hub_cache")


def dense(**arch: Any) -> ModelSpec:
    base = {"layers": 30, "hidden": 4096, "heads": 32, "kv_heads": 8, "head_dim": 128}
    base.update({"intermediate": 14336, "vocab": 32000, "max_positions": 131072})
    base.update(arch)
    return ModelSpec(name="example/x", weights_gb=10.0, **base)


# ---- sliding-window and hybrid attention ----------------------------------------------------


def test_hybrid_groups_follow_the_upstream_docstring_example() -> None:
    # vllm/v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size: "a model with 10
    # full attention layers and 20 sliding window attention layers can be regarded as repeating
    # the pattern (1 * full, 2 * sw) 10 times ... we can group the layers in the model into 3
    # kv_cache_groups, each of which contains 10 layers in the model."
    layout = kv_layout(dense(sliding_window=4096, sliding_layers=20))
    assert (layout.group_size, layout.full_groups, layout.sliding_groups) == (10, 1, 2)
    # the same file: group_size is the smallest count, unless the largest is below 1.5x of it
    # (then the largest, padding the smaller type): 12 full + 12 sliding (gpt-oss-20b) is two
    # groups of 12; Gemma 3 27B's 10 global + 52 local layers are 7 groups of 10 (8 padded)
    gpt_oss = kv_layout(load_catalog().find("openai/gpt-oss-20b"))
    assert (gpt_oss.group_size, gpt_oss.groups) == (12, 2)
    gemma27 = kv_layout(dense(layers=62, sliding_window=1024, sliding_layers=52))
    assert (gemma27.group_size, gemma27.full_groups, gemma27.sliding_groups) == (10, 1, 6)
    uneven = kv_layout(dense(layers=17, sliding_window=1024, sliding_layers=9))
    assert (uneven.group_size, uneven.groups) == (9, 2)  # 8 full padded to 9


def test_sliding_layers_hold_only_their_window() -> None:
    # vllm/v1/kv_cache_interface.py SlidingWindowSpec.max_memory_usage_bytes:
    #   num_tokens = min(self.sliding_window - 1 + max_num_batched_tokens, max_model_len)
    #   # +1 here because the sliding window may not start from the beginning of the block.
    #   return (cdiv(num_tokens, self.block_size) + 1) * self.page_size_bytes
    gpt_oss = load_catalog().find("openai/gpt-oss-20b")
    layout = kv_layout(gpt_oss)
    full = 8192 // BLOCK_SIZE
    sliding = math.ceil((128 - 1 + 2048) / BLOCK_SIZE) + 1
    assert layout.blocks_per_request(8192, 2048) == full + sliding == 512 + 137
    # a sliding group never holds more than the whole request
    assert layout.blocks_per_request(64, 2048) == 2 * (64 // BLOCK_SIZE)


def test_hybrid_model_fits_several_times_more_context_than_full_attention() -> None:
    gemma = spec_from_config(
        {
            "model_type": "gemma3",
            "text_config": {
                "model_type": "gemma3_text",
                "hidden_size": 3840,
                "intermediate_size": 15360,
                "num_attention_heads": 16,
                "num_hidden_layers": 48,
                "num_key_value_heads": 8,
                "sliding_window": 1024,
            },
            "vision_config": {"hidden_size": 1152},
        },
        name="google/gemma-3-12b-it",
    )
    assert (gemma.head_dim, gemma.vocab, gemma.max_positions) == (256, 262208, 131072)
    assert (gemma.sliding_window, gemma.sliding_layers) == (1024, 40)
    gemma = replace(gemma, weights_gb=24.4)
    engine = Engine(model=gemma, version=V0191, max_model_len=32768)
    l40s = GpuBudget("L40S", 44.4)  # below 70 GiB: 2048 batched tokens
    hybrid = estimate(engine, l40s)
    flat = replace(gemma, sliding_window=0, sliding_layers=0)
    plain = estimate(replace(engine, model=flat), l40s)
    # the same KV memory: the log's token count (blocks per group x 16) is the same figure...
    assert hybrid.kv_cache_gib == pytest.approx(plain.kv_cache_gib)
    assert hybrid.kv_cache_tokens == pytest.approx(plain.kv_cache_tokens, rel=0.01)
    # ...but a request needs 1 full group x 2048 blocks + 5 sliding groups x 193 blocks instead
    # of 6 x 2048: about four times the concurrency (vllm/v1/core/kv_cache_utils.py
    # get_max_concurrency_for_kv_cache_config)
    assert hybrid.kv_groups == 6
    assert hybrid.max_concurrency / plain.max_concurrency == pytest.approx(
        6 * 2048 / (2048 + 5 * 193), rel=0.01
    )
    assert hybrid.max_model_len_fit >= 3 * plain.max_model_len_fit or (
        hybrid.max_model_len_fit == gemma.max_positions
    )


def test_sliding_window_read_from_each_config_style() -> None:
    def read(config: dict[str, Any], layers: int = 8) -> tuple[int, int]:
        base = {"hidden_size": 64, "num_hidden_layers": layers, "num_attention_heads": 4}
        spec = spec_from_config({**base, "vocab_size": 100, **config}, name="x/y")
        return spec.sliding_window, spec.sliding_layers

    # gpt-oss: layer_types alternate sliding_attention / full_attention
    assert read(
        {"sliding_window": 128, "layer_types": ["sliding_attention", "full_attention"] * 4}
    ) == (128, 4)
    # Gemma 2 slides on even layers (vllm/model_executor/models/gemma2.py)
    assert read({"model_type": "gemma2", "sliding_window": 4096}, layers=42) == (4096, 21)
    # Qwen2/Qwen3 carry a window they do not use
    assert read({"sliding_window": 131072, "use_sliding_window": False}) == (0, 0)
    assert read({"sliding_window": None}) == (0, 0)
    # Mistral 7B v0.1: every layer slides
    assert read({"model_type": "mistral", "sliding_window": 4096}, layers=32) == (4096, 32)


def test_without_the_hybrid_manager_sliding_layers_are_full_attention() -> None:
    # vllm/v1/core/kv_cache_utils.py unify_hybrid_kv_cache_specs, before the hybrid KV cache
    # manager (vllm-project/vllm#17996) and whenever --disable-hybrid-kv-cache-manager is
    # given: "If a model contains both sliding window attention and full attention, the sliding
    # window attention layers are regarded as full attention layers when allocating kv cache"
    # (vllm-project/vllm#19029)
    gemma = replace(load_catalog().find("google/gemma-3-12b-it"), weights_gb=24.4)
    assert kv_layout(gemma, hybrid=False).groups == 1
    # a model whose every layer slides keeps its window either way (one uniform spec)
    mistral = dense(sliding_window=4096, sliding_layers=30)
    assert kv_layout(mistral, hybrid=False).sliding_groups == 1

    l40s = GpuBudget("L40S", 44.4)
    v091 = VllmVersion.parse("v0.9.1")
    v092 = VllmVersion.parse("v0.9.2")
    assert v091 is not None and v092 is not None
    engine = Engine(model=gemma, version=v092, max_model_len=32768)
    hybrid = estimate(engine, l40s)
    old = estimate(replace(engine, version=v091), l40s)
    off = estimate(replace(engine, hybrid_kv_cache=False), l40s)
    assert hybrid.kv_groups == 6 and old.kv_groups == off.kv_groups == 1
    assert old.sliding_layers == 0 and hybrid.sliding_layers == 40
    # the same memory holds the same blocks, but one request of 32K needs all 48 layers' worth
    assert old.kv_needed_gib == pytest.approx(32768 * kv_bytes_per_token(gemma) / GIB)
    assert hybrid.max_concurrency > 3 * old.max_concurrency
    assert off.max_concurrency == pytest.approx(old.max_concurrency, rel=0.01)


def test_disable_hybrid_kv_cache_manager_flag_is_read_from_extra_args() -> None:
    values: dict[str, Any] = {
        "image": {"tag": "v0.19.1"},
        "gpu": {"profile": "RTX 5090"},
        "model": {"name": "google/gemma-3-12b-it", "quantization": "", "maxModelLen": 16384},
    }
    on = check_values(values).estimate
    off_values = {**values, "model": {**values["model"]}}
    off_values["model"]["extraArgs"] = ["--disable-hybrid-kv-cache-manager"]
    off = check_values(off_values).estimate
    assert on is not None and off is not None
    assert on.kv_groups > 1 and off.kv_groups == 1
    assert off.max_model_len_fit < on.max_model_len_fit


# ---- mixture of experts -----------------------------------------------------------------------


def test_moe_weights_hold_every_expert_and_activation_the_top_k() -> None:
    gpt_oss = load_catalog().find("openai/gpt-oss-20b")
    # every expert is loaded: 32 experts x 3 x 2880 x 2880 per layer dominate the parameters
    linear, _ = replace(gpt_oss, weights_gb=None).param_count()
    experts = 24 * 32 * 3 * 2880 * 2880
    assert linear > experts > 0.9 * linear
    # the forward pass runs only the routed experts: top-4 x 2880 wide, not 32 x 2880
    # (vllm/model_executor/layers/fused_moe: each token's hidden state goes to top_k experts)
    forward = activation_gib(gpt_oss, 2048, 1, engine="v1")
    assert forward == pytest.approx(2048 * 2 * (3 * 4 * 2880 + 2 * 2880) / GIB)
    # decoding reads the active weights only
    assert gpt_oss.active_gb() < 0.3 * gpt_oss.checkpoint_gb()


def _version(text: str) -> VllmVersion:
    version = VllmVersion.parse(text)
    assert version is not None
    return version


def _loaded(model: ModelSpec, tp: int, backend: str = "") -> float:
    """What "Model loading took" prints: the checkpoint share plus the whole rotary cache."""
    return weights_gib(model, tp, mxfp4_backend=backend) + rope_cache_gib(model)


def test_mxfp4_experts_are_padded_for_the_marlin_kernel() -> None:
    # vllm/model_executor/layers/quantization/mxfp4.py create_weights (v0.11.0): "The moe
    # marlin kernel requires that for each linear n % 256 == 0 and k % 128 == 0" ->
    # round_up(intermediate_size_per_partition, 128), hidden_size = round_up(hidden_size, 256)
    big = load_catalog().find("openai/gpt-oss-120b")
    small = load_catalog().find("openai/gpt-oss-20b")
    assert mxfp4_padding(big, 4, "marlin") == pytest.approx((768 / 720) * (3072 / 2880))
    assert mxfp4_padding(small, 1, "marlin") == pytest.approx((2944 / 2880) * (3072 / 2880))
    # printed "Model loading took": 17.22 GiB per GPU for gpt-oss-120b at TP=4 on A100 80GB
    # (v0.10.1.1), 13.72 GiB for gpt-oss-20b on one A100 (v0.19.0), 65.97 GiB for gpt-oss-120b
    # on one H100 under v0.10.1 (vllm-project/vllm#23278, "leveraging the Marlin kernel");
    # the unpadded Triton layout keeps the measured factor (64.38 and 13.47 GiB on one H100,
    # "Using Triton backend" in vllm-project/vllm#33155)
    assert _loaded(big, 4, "marlin") == pytest.approx(17.22, rel=0.01)
    assert _loaded(small, 1, "marlin") == pytest.approx(13.72, rel=0.01)
    assert _loaded(big, 1, "marlin") == pytest.approx(65.97, rel=0.005)
    assert _loaded(big, 1, "triton") == pytest.approx(64.38, rel=0.015)
    assert _loaded(small, 1, "triton") == pytest.approx(13.47, rel=0.01)
    # dense and non-MXFP4 checkpoints are untouched by the backend
    coder = load_catalog().find("Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4")
    assert weights_gib(coder, 1, mxfp4_backend="marlin") == weights_gib(coder, 1)
    assert weights_gib(coder, 1, mxfp4_backend="rocm") == weights_gib(coder, 1)


def test_mxfp4_padding_follows_the_moe_layers_own_tp_size() -> None:
    # vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig.make (v0.19.1):
    # without expert parallel `flatten_tp_across_dp_and_pcp` shards the MoE layer over
    # "dp_size * pcp_size * tp_size" ranks and fused_moe/layer.py takes
    # "intermediate_size_per_partition = intermediate_size // self.tp_size"; under `use_ep` it
    # returns `tp_size=1`: whole experts, the intermediate size unsplit
    big = load_catalog().find("openai/gpt-oss-120b")
    card = GpuBudget("A100 80GB", 79.15, arch="sm_80")  # Marlin: intermediate to 128
    release = _version("0.19.1")

    def checkpoint_share(expert_parallel: bool) -> float:
        engine = Engine(
            model=big,
            version=release,
            max_model_len=8192,
            data_parallel_size=2,
            expert_parallel=expert_parallel,
        )
        return estimate(engine, card).weights_gib - rope_cache_gib(big)

    # DP 2 at TP 1: 2880 // 2 = 1440 per rank, padded to 1536 (x1.067); with EP the whole
    # 2880 pads to 2944 (x1.022); the hidden size to 3072 either way
    experts_gb = 36 * 128 * 3 * 2880 * 2880 * 4.25 / 8 / 1e9
    rest_gb = big.checkpoint_gb() - experts_gb
    hidden = 3072 / 2880
    flat = experts_gb * (1536 / 1440) * hidden + rest_gb
    whole = experts_gb * (2944 / 2880) * hidden + rest_gb
    # the same GPU share of either layout: only the padding differs
    assert checkpoint_share(False) / checkpoint_share(True) == pytest.approx(flat / whole)
    assert flat / whole > 1.04


def test_mxfp4_alignment_per_backend() -> None:
    # vllm/model_executor/layers/fused_moe/oracle/mxfp4.py (v0.19.1)
    # mxfp4_round_up_hidden_size_and_intermediate_size: MARLIN 128 / 256; "elif
    # current_platform.is_rocm(): intermediate_size = round_up(intermediate_size, 256);
    # hidden_size = round_up(hidden_size, 256)"; "else: intermediate_size =
    # round_up(intermediate_size, 64)" (Triton)
    big = load_catalog().find("openai/gpt-oss-120b")
    assert mxfp4_padding(big, 1, "rocm") == pytest.approx((3072 / 2880) ** 2)
    assert mxfp4_padding(big, 1, "triton") == 1.0  # 2880 is a multiple of 64
    assert mxfp4_padding(big, 4, "triton") == pytest.approx(768 / 720)  # 720 -> 768
    assert weights_gib(big, 1, mxfp4_backend="rocm") > weights_gib(big, 1, mxfp4_backend="marlin")


CARDS = {
    "A100": GpuBudget("A100 80GB", 79.15, arch="sm_80"),
    "RTX 4090": GpuBudget("RTX 4090", 23.55, arch="sm_89"),
    "H100": GpuBudget("H100", 79.18, arch="sm_90"),
    "B200": GpuBudget("B200", 178.4, arch="sm_100"),
    "RTX 5090": GpuBudget("RTX 5090", 31.4, arch="sm_120"),
    "RX 7900 XTX": GpuBudget("RX 7900 XTX", 23.5, arch="gfx1100"),
}


@pytest.mark.parametrize(
    ("card", "release", "env", "expected"),
    [
        # v0.10.1 _should_use_marlin: "if envs.VLLM_MXFP4_USE_MARLIN is not None: return
        # envs.VLLM_MXFP4_USE_MARLIN"; on CUDA but sm_100, Marlin when "not
        # has_device_capability(90)", "not has_triton_kernels()" or "not
        # is_torch_equal_or_newer('2.8.0')" -- and requirements/cuda.txt pins torch==2.7.1
        ("A100", "0.10.1", None, "marlin"),
        ("H100", "0.10.1", None, "marlin"),
        ("H100", "0.10.1", False, "triton"),
        ("RTX 4090", "0.10.1", True, "marlin"),
        # v0.10.2-v0.11.x get_mxfp4_backend: Marlin "if get_device_capability()[0] < 9 or not
        # has_triton_kernels()"; triton_kernels is an optional package a stock install lacks,
        # and v0.11.0 does not read VLLM_MXFP4_USE_MARLIN at all
        ("H100", "0.11.0", None, "marlin"),
        ("H100", "0.11.0", False, "marlin"),
        ("RTX 5090", "0.11.0", None, "marlin"),
        # v0.11.2: "envs.VLLM_MXFP4_USE_MARLIN or get_device_capability()[0] < 9 or ..."
        ("H100", "0.11.2", True, "marlin"),
        # v0.12.0 builds triton_kernels in; Triton only where "(9, 0) <=
        # current_platform.get_device_capability() < (11, 0)" ("SM120 needs this fix")
        ("H100", "0.12.0", None, "triton"),
        ("H100", "0.19.1", None, "triton"),
        ("H100", "0.19.1", True, "marlin"),  # oracle: is_set(...) and VLLM_MXFP4_USE_MARLIN
        ("RTX 5090", "0.19.1", None, "marlin"),
        ("RTX 5090", "0.19.1", False, "marlin"),  # Triton not supported there: Marlin anyway
        ("RTX 4090", "0.19.1", None, "marlin"),
        ("A100", "0.19.1", False, "marlin"),
        # sm_100 takes FlashInfer's backends, not modelled: the plain repack factor
        ("B200", "0.19.1", None, ""),
        ("B200", "0.11.0", None, ""),
        # ROCm: create_weights' rocm branch rounds both sizes to 256 on every release
        ("RX 7900 XTX", "0.11.0", None, "rocm"),
        ("RX 7900 XTX", "0.19.1", None, "rocm"),
    ],
)
def test_mxfp4_backend_by_release_and_card(
    card: str, release: str, env: bool | None, expected: str
) -> None:
    assert mxfp4_backend(CARDS[card], _version(release), env) == expected


def test_consumer_blackwell_pads_gpt_oss_on_every_release() -> None:
    # v0.12+ "SM120 needs this fix: https://github.com/triton-lang/triton/pull/8498": an RTX
    # 5090 loads the padded Marlin layout, a Hopper card the unpadded one
    small = load_catalog().find("openai/gpt-oss-20b")
    for release in ("0.10.1", "0.11.0", "0.19.1"):
        engine = Engine(model=small, version=_version(release), max_model_len=8192)
        blackwell = estimate(engine, CARDS["RTX 5090"])
        assert blackwell.mxfp4_backend == "marlin"
        assert blackwell.weights_gib == pytest.approx(13.67, abs=0.02)
    hopper = estimate(
        Engine(model=small, version=_version("0.19.1"), max_model_len=8192), CARDS["H100"]
    )
    assert hopper.mxfp4_backend == "triton" and hopper.weights_gib == pytest.approx(13.46, abs=0.02)
    # a log that shows the other backend wins (the replay's mxfp4_backend field)
    forced = estimate(
        Engine(model=small, version=_version("0.11.0"), max_model_len=8192, mxfp4_backend="triton"),
        CARDS["H100"],
    )
    assert forced.weights_gib == pytest.approx(hopper.weights_gib)


def test_extra_env_forces_the_marlin_backend() -> None:
    values = {
        "model": {"name": "openai/gpt-oss-20b", "maxModelLen": 8192},
        "image": {"tag": "v0.19.1"},
        "gpu": {"profile": "H100"},
    }
    plain = check_values(values)
    forced = check_values({**values, "extraEnv": [{"name": "VLLM_MXFP4_USE_MARLIN", "value": "1"}]})
    assert plain.estimate is not None and forced.estimate is not None
    assert plain.estimate.mxfp4_backend == "triton" and forced.estimate.mxfp4_backend == "marlin"
    assert forced.estimate.weights_gib > plain.estimate.weights_gib


# ---- MLA ------------------------------------------------------------------------------------


def test_mla_caches_one_latent_per_layer_on_every_rank() -> None:
    # vllm/v1/kv_cache_interface.py MLAAttentionSpec: one head of kv_lora_rank + qk_rope_head_dim,
    # no separate K and V, replicated rather than split across tensor-parallel ranks
    lite = spec_from_config(
        {
            "model_type": "deepseek_v2",
            "hidden_size": 2048,
            "num_hidden_layers": 27,
            "num_attention_heads": 16,
            "num_key_value_heads": 16,
            "vocab_size": 102400,
            "kv_lora_rank": 512,
            "qk_rope_head_dim": 64,
            "n_routed_experts": 64,
            "num_experts_per_tok": 6,
            "moe_intermediate_size": 1408,
            "first_k_dense_replace": 1,
            "max_position_embeddings": 163840,
        },
        name="deepseek-ai/DeepSeek-V2-Lite",
    )
    assert lite.is_mla and lite.family == "mla"
    assert kv_bytes_per_token(lite) == 27 * (512 + 64) * 2 == 31104
    assert kv_bytes_per_token(lite, tp=2) == kv_bytes_per_token(lite)
    assert kv_bytes_per_token(lite, "fp8") == 27 * 576
    # a plain GQA cache of the same model would take 2 x 27 x 16 x 128 x 2 B: 7x more
    est = estimate(Engine(model=replace(lite, weights_gb=31.4), version=V0191), H100)
    assert est.kv_bytes_per_token == 31104 and est.starts


# ---- FP8 checkpoints and an fp8 KV cache -------------------------------------------------------


def test_fp8_checkpoint_and_fp8_kv_cache_on_ada() -> None:
    coder = load_catalog().find("Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8")
    assert coder.quantization == "fp8"
    # FP8 stores linear layers in one byte: the 30B checkpoint is about half its bf16 size
    bf16 = replace(coder, quantization="none", weights_gb=None)
    assert replace(coder, weights_gb=None).checkpoint_gb() < 0.55 * bf16.checkpoint_gb()
    engine = Engine(model=coder, version=V0191, max_model_len=8192)
    auto = estimate(engine, GpuBudget("RTX 5090", (32607 - 450) / 1024))
    fp8 = estimate(replace(engine, kv_cache_dtype="fp8"), GpuBudget("RTX 5090", 31.4))
    # --kv-cache-dtype fp8: one byte per element (vllm/v1/kv_cache_interface.py page size uses
    # the cache dtype's size), so twice the tokens in the same memory
    assert fp8.kv_bytes_per_token * 2 == auto.kv_bytes_per_token
    report = check_values(
        {
            "gpu": {"profile": "RTX 3090"},
            "model": {"name": "Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "quantization": ""},
        }
    )
    rules = {f.rule for f in report.findings}
    assert "fp8-w8a8-needs-cc-8-9" in rules  # Ampere runs FP8 weights through Marlin, slower


# ---- CUDA graphs by image version -------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "env", "budgeted"),
    [
        ("v0.17.1", "1", False),  # no estimate before v0.18
        ("v0.18.0", None, False),  # estimated, not subtracted by default
        ("v0.19.1", "1", True),  # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 turns it on
        ("v0.20.0", None, True),  # the default from v0.20.0 (the log says v0.21)
        ("v0.20.0", "0", False),  # and the variable turns it off again
        ("v0.22.0", None, True),
    ],
)
def test_cuda_graph_estimate_by_version_and_extra_env(
    tag: str, env: str | None, budgeted: bool
) -> None:
    values: dict[str, Any] = {
        "image": {"tag": tag},
        "gpu": {"profile": "RTX 5090"},
        "model": {"name": "Qwen/Qwen2.5-Coder-7B-Instruct", "quantization": ""},
    }
    if env is not None:
        values["extraEnv"] = [{"name": "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS", "value": env}]
    est = check_values(values).estimate
    assert est is not None and est.cudagraph_in_budget is budgeted
    eager = check_values({**values, "model": {**values["model"], "enforceEager": True}}).estimate
    assert eager is not None and not eager.cudagraph_in_budget


# ---- flags given through extraConfig / extraArgs ---------------------------------------------


def seed(**model: Any) -> dict[str, Any]:
    return {
        "image": {"tag": "v0.19.1"},
        "gpu": {"profile": "RTX 5080"},
        "model": {
            "name": "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4",
            "maxModelLen": 8192,
            **model,
        },
    }


def test_kv_cache_memory_bytes_fixes_the_cache_size() -> None:
    # vllm/v1/worker/gpu_worker.py determine_available_memory: with kv_cache_memory_bytes set
    # vLLM uses it as the KV cache size and skips the gpu_memory_utilization arithmetic
    est = check_values(seed(extraArgs=["--kv-cache-memory-bytes", "2G"])).estimate
    assert est is not None and est.kv_cache_fixed
    assert est.kv_cache_gib == pytest.approx(2.0)
    assert est.gpu_blocks == int(2 * GIB // (196608 * BLOCK_SIZE))
    too_big = check_values(seed(extraArgs=["--kv-cache-memory-bytes=8G"]))
    assert too_big.verdict == "FAIL" and too_big.estimate is not None
    assert too_big.estimate.failure == "oom_kv_fixed"
    old = check_values(
        {**seed(extraArgs=["--kv-cache-memory-bytes", "2G"]), "image": {"tag": "v0.9.2"}}
    )
    assert any("needs vLLM v0.10.2" in p.message for p in old.failures)


def test_max_model_len_minus_one_picks_the_largest_that_fits() -> None:
    auto = check_values(seed(extraArgs=["--max-model-len", "-1"]))
    est = auto.estimate
    assert est is not None and est.auto_max_model_len
    assert est.max_model_len == est.max_model_len_fit > 8192 and est.starts
    old = check_values({**seed(extraArgs=["--max-model-len", "-1"]), "image": {"tag": "v0.13.0"}})
    assert any("needs vLLM v0.14" in p.message for p in old.failures)


def test_extra_args_win_over_the_values_they_repeat() -> None:
    report = check_values(
        seed(
            extraConfig={"max-num-seqs": 64},
            extraArgs=[
                "--max-model-len=4096",
                "--gpu-memory-utilization",
                "0.8",
                "--enforce-eager",
            ],
        )
    )
    est = report.estimate
    assert est is not None
    assert (est.max_model_len, est.max_num_seqs, est.utilization) == (4096, 64, 0.8)
    assert est.cudagraph_gib == 0.0
    # the command line wins over the config file at run time, so it is what gets checked
    other = check_values(
        seed(
            extraArgs=[
                "--model",
                "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4",
                "--max-model-len",
                "131072",
            ]
        )
    )
    assert other.model == "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4"
    assert other.estimate is not None and other.estimate.max_model_len == 131072
    assert "model.maxModelLen" in {p.key for p in other.failures}
    bad = check_values(seed(extraArgs=["--max-num-seqs", "many"]))
    assert [p.key for p in bad.failures] == ["model.extraArgs"]
    assert "--max-num-seqs 'many'" in bad.failures[0].message
