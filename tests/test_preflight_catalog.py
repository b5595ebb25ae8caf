"""Model catalog: bundled data, user config.json, safetensors index, estimates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archon.errors import UsageError
from archon.preflight.catalog import (
    _spec_from_entry,
    load_catalog,
    load_model_config,
    normalize_quantization,
    spec_from_config,
    vision_params,
    weights_from_safetensors_index,
)
from archon.preflight.report import resolve_model

DATA = Path(__file__).parent / "data" / "preflight"


@pytest.mark.parametrize("size", ["0.5B", "1.5B", "3B", "7B", "14B", "32B"])
@pytest.mark.parametrize("suffix", ["", "-GPTQ-Int4", "-AWQ"])
def test_qwen_coder_family_is_complete(size: str, suffix: str) -> None:
    spec = load_catalog().find(f"Qwen/Qwen2.5-Coder-{size}-Instruct{suffix}")
    assert spec.max_positions == 32768
    assert spec.checkpoint_gb() > 0


def test_reference_sizes_and_config_facts() -> None:
    spec = load_catalog().find("qwen/qwen2.5-coder-14b-instruct-gptq-int4")  # case-insensitive
    assert (spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.head_dim) == (
        48,
        5120,
        40,
        8,
        128,
    )
    assert spec.checkpoint_gb() == 9.98 and not spec.weights_estimated
    assert spec.quantization == "gptq"


def test_parameter_estimate_matches_listed_sizes() -> None:
    # the estimate (used when a size is not listed) against sizes that are listed
    from dataclasses import replace

    for name in (
        "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4",
        "meta-llama/Llama-3.1-8B-Instruct",
        "Qwen/Qwen2.5-Coder-32B-Instruct-GPTQ-Int4",
    ):
        spec = load_catalog().find(name)
        estimated = replace(spec, weights_gb=None).checkpoint_gb()
        assert estimated == pytest.approx(spec.checkpoint_gb(), rel=0.02)


def test_name_with_a_note_resolves() -> None:
    spec = load_catalog().get("Qwen/Qwen2.5-7B (exact variant not captured)")
    assert spec is not None and spec.name == "Qwen/Qwen2.5-7B"


def test_unknown_model_is_a_one_line_usage_error() -> None:
    with pytest.raises(UsageError) as err:
        load_catalog().find("example/not-a-model")
    assert err.value.key == "model.name" and "--model-config" in err.value.fix
    assert "\n" not in err.value.line()


def test_user_config_json_and_safetensors_index() -> None:
    spec = load_model_config(DATA / "tiny-config.json", name="example/tiny")
    assert (spec.layers, spec.kv_heads, spec.head_dim, spec.tied) == (16, 8, 64, True)
    assert weights_from_safetensors_index(DATA / "tiny.safetensors.index.json") == pytest.approx(
        2.471645184
    )
    resolved = resolve_model(
        "example/tiny",
        model_config=DATA / "tiny-config.json",
        safetensors_index=DATA / "tiny.safetensors.index.json",
    )
    assert resolved.checkpoint_gb() == pytest.approx(2.471645184)
    by_gib = resolve_model("example/tiny", model_config=DATA / "tiny-config.json", weights_gib=2.0)
    assert by_gib.checkpoint_gb() == pytest.approx(2.0 * 1.073741824)


def test_bad_user_files_are_usage_errors(tmp_path: Path) -> None:
    broken = tmp_path / "config.json"
    broken.write_text('{"hidden_size": 0}')
    with pytest.raises(UsageError, match="hidden_size"):
        load_model_config(broken, name="x")
    with pytest.raises(UsageError, match="file not found"):
        load_model_config(tmp_path / "missing.json", name="x")
    index = tmp_path / "index.json"
    index.write_text('{"metadata": {}}')
    with pytest.raises(UsageError, match="total_size"):
        weights_from_safetensors_index(index)
    with pytest.raises(UsageError, match="positive"):
        resolve_model("example/tiny", model_config=DATA / "tiny-config.json", weights_gib=-1)


def test_quantization_spellings() -> None:
    assert normalize_quantization("awq_marlin") == "awq"
    assert normalize_quantization("GPTQ") == "gptq"
    assert normalize_quantization(None) == "none"
    assert normalize_quantization("") == "none"


# google/gemma-4-26B-A4B's config.json as transformers writes it: the "gemma-4-26b-a4b" variant
# and _LARGE_MODEL_VISION_CONFIG of src/transformers/models/gemma4/convert_gemma4_weights.py
# (the keys the preflight reads; the rest are Gemma4TextConfig defaults).
GEMMA4_26B = {
    "architectures": ["Gemma4ForConditionalGeneration"],
    "model_type": "gemma4",
    "text_config": {
        "model_type": "gemma4_text",
        "hidden_size": 2816,
        "intermediate_size": 2112,
        "num_hidden_layers": 30,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 5,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "num_global_key_value_heads": 2,
        "head_dim": 256,
        "global_head_dim": 512,
        "attention_k_eq_v": True,
        "enable_moe_block": True,
        "num_experts": 128,
        "moe_intermediate_size": 704,
        "top_k_experts": 8,
        "sliding_window": 1024,
        "max_position_embeddings": 262144,
        "vocab_size": 262144,
        "tie_word_embeddings": True,
    },
    "vision_config": {
        "model_type": "gemma4_vision",
        "hidden_size": 1152,
        "intermediate_size": 4304,
        "num_hidden_layers": 27,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "head_dim": 72,
        "patch_size": 16,
        "position_embedding_size": 10240,
        "hidden_activation": "gelu_pytorch_tanh",
    },
}


def test_gemma4_config_is_read_as_vllm_builds_its_layers() -> None:
    spec = spec_from_config(GEMMA4_26B, name="google/gemma-4-26B-A4B")
    # 25 sliding layers of 8 x 256 KV heads, 5 full ones of 2 x 512 (vLLM gemma4.py)
    assert (spec.sliding_window, spec.sliding_layers, spec.full_layers) == (1024, 25, 5)
    assert (spec.kv_heads, spec.head_dim) == (8, 256)
    assert (spec.full_kv_heads, spec.full_head_dim) == (2, 512)
    # top_k_experts routed experts, plus the dense MLP every layer runs beside them
    assert (spec.experts, spec.experts_per_token, spec.moe_intermediate) == (128, 8, 704)
    assert spec.shared_intermediate == 2112 and spec.family == "sliding-window+moe"
    # the catalog entry carries the same facts
    entry = load_catalog().find("google/gemma-4-26B-A4B-it")
    for key in (
        "layers",
        "hidden",
        "kv_heads",
        "head_dim",
        "full_kv_heads",
        "full_head_dim",
        "sliding_layers",
        "experts_per_token",
        "shared_intermediate",
        "encoder_params",
        "max_positions",
    ):
        assert getattr(entry, key) == getattr(spec, key), key
    # 25.2 B language-model and 0.57 B vision parameters: 48.1 GiB in bf16 (vLLM printed
    # "Model loading took 48.5 GiB" for it on an A100)
    linear, embed = spec.param_count()
    assert linear + embed == pytest.approx(25.25e9, rel=0.005)
    assert spec.encoder_params == pytest.approx(0.573e9, rel=0.005)
    assert spec.checkpoint_gb() * 1e9 / 2**30 == pytest.approx(48.5, rel=0.015)


def test_gemma4_without_layer_types_or_with_per_layer_config() -> None:
    source = GEMMA4_26B["text_config"]
    assert isinstance(source, dict)
    text: dict[str, Any] = dict(source)
    del text["layer_types"]
    # transformers' default: every sixth layer full, and the last one (35 layers: 5, 11, 17, 23,
    # 29 and 34)
    odd = spec_from_config({**text, "num_hidden_layers": 35}, name="x")
    assert (odd.sliding_layers, odd.full_layers) == (29, 6)
    # newer transformers writes the full layers' geometry per layer instead
    per_layer = {
        **{k: v for k, v in text.items() if "global" not in k},
        "layer_types": ["sliding_attention", "full_attention"] * 15,
        "per_layer_config": {
            "00": {"head_dim": 128},
            "01": {"head_dim": 512, "num_key_value_heads": 2},
        },
    }
    spec = spec_from_config(per_layer, name="x")
    assert (spec.full_kv_heads, spec.full_head_dim, spec.sliding_layers) == (2, 512, 15)
    # without either, Gemma4TextConfig's default widens the full layers' heads to 512
    default = spec_from_config({**per_layer, "per_layer_config": {}}, name="x")
    assert (default.full_kv_heads, default.full_head_dim) == (8, 512)
    # a model whose layers all share one geometry has no global override
    same = {**per_layer, "per_layer_config": {}, "global_head_dim": 256}
    plain = spec_from_config(same, name="x")
    assert (plain.global_kv_heads, plain.global_head_dim) == (0, 0)


def test_qwen2_5_vl_entry_keeps_its_vision_config_and_counts_the_tower() -> None:
    spec = load_catalog().find("Qwen/Qwen2.5-VL-7B-Instruct")
    vision = spec.vision_config
    assert (vision["depth"], vision["spatial_merge_size"], vision["window_size"]) == (32, 2, 112)
    assert list(vision["fullatt_block_indexes"]) == [7, 15, 23, 31]
    # the published checkpoint holds 8,292,166,656 parameters (16,584,333,312 bytes in bf16);
    # the text model's share is 7.62 B, the tower with its 2 x 2 patch merger the rest
    linear, embed = spec.param_count()
    assert linear + embed + spec.encoder_params == pytest.approx(8_292_166_656, rel=0.001)
    assert spec.encoder_params == pytest.approx(676.5e6, rel=0.002)
    # without the merger (one linear layer into the text model) the tower is 40 M short
    plain = vision_params({**dict(vision), "spatial_merge_size": None}, spec.hidden)
    assert spec.encoder_params - plain > 39e6


def test_catalog_vision_short_names_and_bad_vision() -> None:
    arch = {
        "layers": 4,
        "hidden": 64,
        "heads": 4,
        "kv_heads": 4,
        "head_dim": 16,
        "intermediate": 128,
        "vocab": 100,
        "max_positions": 512,
    }
    entry = {
        "name": "example/vl",
        "arch": {
            **arch,
            "vision": {"layers": 2, "hidden": 32, "intermediate": 64, "window_size": 8},
        },
    }
    spec = _spec_from_entry(entry, "catalog.yaml")
    assert dict(spec.vision_config) == {
        "num_hidden_layers": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "window_size": 8,
    }
    assert spec.encoder_params == 2 * (4 * 32 * 32 + 2 * 32 * 64) + 3 * 14 * 14 * 32 + 32 * 64
    assert _spec_from_entry({"name": "example/t", "arch": arch}, "c").encoder_params == 0
    with pytest.raises(UsageError) as err:
        _spec_from_entry({"name": "example/vl", "arch": {**arch, "vision": [1]}}, "catalog.yaml")
    assert err.value.key == "models['example/vl'].arch.vision"


def test_qwen_1_config_halves_the_mlp_and_takes_the_shorter_length() -> None:
    # Qwen/Qwen-7B config.json (QWenLMHeadModel); vLLM's qwen.py builds each MLP half at
    # intermediate_size // 2, and _get_and_verify_max_len takes the smallest length key
    config = {
        "architectures": ["QWenLMHeadModel"],
        "model_type": "qwen",
        "hidden_size": 4096,
        "intermediate_size": 22016,
        "kv_channels": 128,
        "max_position_embeddings": 32768,
        "seq_length": 8192,
        "num_attention_heads": 32,
        "num_hidden_layers": 32,
        "vocab_size": 151936,
        "tie_word_embeddings": False,
    }
    spec = spec_from_config(config, name="Qwen/Qwen-7B")
    assert (spec.intermediate, spec.max_positions, spec.kv_heads, spec.qkv_bias) == (
        11008,
        8192,
        32,
        True,
    )
    entry = load_catalog().find("Qwen/Qwen-7B-Chat")
    assert (entry.intermediate, entry.max_positions, entry.qkv_bias) == (11008, 8192, True)
    # 7.72 B parameters: the 15.44 GB of the published bf16 checkpoint
    assert entry.checkpoint_gb() == pytest.approx(15.44, rel=0.005)


def test_qwen3_coder_480b_fp8_entry() -> None:
    spec = load_catalog().find("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8")
    assert (spec.experts, spec.experts_per_token, spec.moe_intermediate) == (160, 8, 2560)
    assert spec.quantization == "fp8" and spec.family == "moe"
    # 480 B parameters, nearly all in fp8 linear layers
    linear, embed = spec.param_count()
    assert (linear + embed) == pytest.approx(480e9, rel=0.005)
    assert spec.checkpoint_gb() == pytest.approx(482, rel=0.01)


def test_rope_caches_are_loaded_memory_no_checkpoint_holds() -> None:
    # vLLM registers each distinct rope's cos/sin cache as a buffer at load (vllm/model_executor/
    # layers/rotary_embedding/base.py `self.register_buffer("cos_sin_cache", cache, ...)` after
    # `cache = cache.to(dtype)`); linear scaling builds `max_len = self.max_position_embeddings *
    # scaling_factor` rows (linear_scaling_rope.py), and Gemma 3's sliding layers get a second
    # rope over rope_local_base_freq (models/gemma3.py Gemma3Attention)
    from archon.paths import data_file
    from archon.preflight.memory import rope_cache_gib, weights_gib

    hub = data_file("hub", "google--gemma-3-12b-it", "config.json")
    gemma3 = load_model_config(hub, name="google/gemma-3-12b-it")
    assert (gemma3.rope_factor, gemma3.local_rope) == (8.0, True)
    assert rope_cache_gib(gemma3) == pytest.approx(131072 * 9 * 256 * 2 / 2**30)
    catalog = load_catalog().find("google/gemma-3-12b-it")
    assert (catalog.rope_factor, catalog.local_rope) == (8.0, True)
    # vLLM v0.19.0 on an H100 printed "Model loading took 23.31 GiB" for the 24.4 GB checkpoint
    # (llm-d-incubation/llm-d-planner accuracy/results/v0.19.0/logs, gemma-3-12b-it)
    loaded = weights_gib(catalog) + rope_cache_gib(catalog)
    assert loaded == pytest.approx(23.31, rel=0.005)
    assert loaded - catalog.checkpoint_gb() * 1e9 / 2**30 > 0.55

    base = {
        "model_type": "qwen2",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "vocab_size": 152064,
        "max_position_embeddings": 32768,
    }
    plain = spec_from_config(base, name="plain")
    assert (plain.rope_factor, plain.local_rope) == (1.0, False)
    assert rope_cache_gib(plain) < 0.01  # 32768 x 128 x 2 B: noise for most models
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert spec_from_config({**base, "rope_scaling": yarn}, name="y").rope_factor == 4.0
    # YaRN caches original x factor rows, whatever max_position_embeddings says
    longer = {**base, "max_position_embeddings": 131072, "rope_scaling": yarn}
    assert spec_from_config(longer, name="y").rope_factor == 1.0
    llama3 = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert spec_from_config({**base, "rope_scaling": llama3}, name="l").rope_factor == 1.0
