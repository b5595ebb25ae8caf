"""Model catalog: bundled data, user config.json, safetensors index, estimates."""

from __future__ import annotations

from pathlib import Path

import pytest

from archon.errors import UsageError
from archon.preflight.catalog import (
    load_catalog,
    load_model_config,
    normalize_quantization,
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
