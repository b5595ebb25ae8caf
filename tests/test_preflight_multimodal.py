"""The multimodal encoder pass of vLLM's profile run, each test against the upstream code it
mirrors (vllm-project/vllm; file and function named in each test)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from archon.preflight import check_values
from archon.preflight.catalog import ModelSpec, spec_from_config
from archon.preflight.explain import steps
from archon.preflight.memory import GIB, Engine, GpuBudget, activation_gib, estimate
from archon.preflight.multimodal import (
    MmSettings,
    apply_mm_flag,
    encoder_pass,
    limit_from_flag,
    vision_tower,
)
from archon.preflight.versions import VllmVersion


def release(tag: str) -> VllmVersion:
    version = VllmVersion.parse(tag)
    assert version is not None
    return version


V0110 = release("v0.11.0")
V0120 = release("v0.12.0")
V0191 = release("v0.19.1")
V073 = release("v0.7.3")
H100 = GpuBudget("H100", 79.18, arch="sm_90")
RTX3090 = GpuBudget("RTX 3090", 23.56, arch="sm_86")

# vision_config of mistralai/Mistral-Small-3.2-24B-Instruct-2506 (Pixtral), with the top-level
# spatial_merge_size of its config.json
PIXTRAL = {
    "model_type": "pixtral",
    "num_hidden_layers": 24,
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "image_size": 1540,
    "patch_size": 14,
    "hidden_act": "silu",
    "spatial_merge_size": 2,
}
# vision_config of Qwen/Qwen2.5-VL-7B-Instruct
QWEN25_VL = {
    "model_type": "qwen2_5_vl",
    "depth": 32,
    "hidden_act": "silu",
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "out_hidden_size": 3584,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "in_chans": 3,
}
# vision_config of google/gemma-3-12b-it (SigLIP) with the top-level mm_tokens_per_image
SIGLIP_GEMMA3 = {
    "model_type": "siglip_vision_model",
    "num_hidden_layers": 27,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "image_size": 896,
    "patch_size": 14,
    "mm_tokens_per_image": 256,
}


def vlm(vision: dict[str, Any], **arch: Any) -> ModelSpec:
    base: dict[str, Any] = {"layers": 40, "hidden": 5120, "heads": 32, "kv_heads": 8}
    base.update({"head_dim": 128, "intermediate": 32768, "vocab": 131072})
    base.update({"max_positions": 131072})
    base.update(arch)
    return ModelSpec(
        name="example/vlm", weights_gb=48.0, vision_config=MappingProxyType(vision), **base
    )


def text_only(model: ModelSpec) -> ModelSpec:
    return replace(model, vision_config=MappingProxyType({}))


def test_tokens_per_image_follow_each_processor() -> None:
    # vllm/model_executor/models/pixtral.py PixtralHFEncoderInfo.get_num_image_tokens: a grid
    # of image_size // (patch_size x spatial_merge_size) per side, ncols x nrows
    pixtral = vision_tower(vlm(PIXTRAL))
    assert pixtral is not None
    assert (pixtral.patches_per_item, pixtral.tokens_per_item) == (110 * 110, 55 * 55)
    # qwen2_vl.py get_image_size_with_most_features: smart_resize to max_pixels 12845056,
    # 3584 x 3584 pixels, 256 x 256 patches of 14, merged 2 x 2 into 16384 tokens
    qwen = vision_tower(vlm(QWEN25_VL, hidden=3584))
    assert qwen is not None
    assert (qwen.patches_per_item, qwen.tokens_per_item) == (65536, 16384)
    assert qwen.values_per_patch == 3 * 2 * 14 * 14  # two frames per temporal patch
    # gemma3_mm.py: processor.image_seq_length (mm_tokens_per_image) tokens for 64 x 64 patches
    siglip = vision_tower(vlm(SIGLIP_GEMMA3, hidden=3840))
    assert siglip is not None
    assert (siglip.patches_per_item, siglip.tokens_per_item) == (4096, 256)
    assert not siglip.gated and pixtral.gated
    assert vision_tower(text_only(vlm(PIXTRAL))) is None
    # no image size, and not Qwen-VL's two-frame merged patches: nothing to size the image by
    unsized = {k: v for k, v in PIXTRAL.items() if k != "image_size"}
    assert vision_tower(vlm(unsized)) is None


def test_v1_encoder_budget_and_items_per_batch() -> None:
    # vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget:
    #   encoder_compute_budget = max(max_num_encoder_input_tokens, max_tokens_per_mm_item)
    # vllm/v1/worker/utils.py MultiModalBudget.get_max_items:
    #   max_encoder_items_per_batch = encoder_budget // max_tokens_per_item
    #   max_items_per_prompt = max(1, min(mm_limit, self.max_model_len // max_tokens_per_item))
    #   max_items_per_batch = max(1, min(max_encoder_items_per_batch,
    #                                    max_decoder_items_per_batch))
    model = vlm(PIXTRAL)
    common: dict[str, Any] = {"engine": "v1", "max_model_len": 16000, "chunked": True}
    mm = encoder_pass(model, version=V0110.parts, batched_tokens=8192, max_num_seqs=1024, **common)
    assert mm is not None
    assert (mm.budget, mm.items, mm.tokens_per_item) == (8192, 2, 3025)
    # a budget below one image is raised to one image
    gemma = vlm(QWEN25_VL, hidden=3584)
    mm = encoder_pass(gemma, version=V0191.parts, batched_tokens=2048, max_num_seqs=256, **common)
    assert mm is not None
    assert (mm.budget, mm.items) == (16384, 1)
    # the decoder side caps it: one request may hold at most max_model_len // tokens images
    siglip = vlm(SIGLIP_GEMMA3, hidden=3840)
    mm = encoder_pass(
        siglip,
        version=V0191.parts,
        batched_tokens=8192,
        max_num_seqs=1,
        engine="v1",
        max_model_len=1024,
        chunked=True,
    )
    assert mm is not None
    assert mm.items == 1024 // 256


def test_v1_cached_outputs_are_padded_to_the_budget_until_v0_12() -> None:
    # v0.11.0 gpu_model_runner.py profile_run: "we create dummy embeddings of size
    # (encode_budget, hidden_size)"; v0.12.0: "(max_tokens_for_modality, hidden_size)"
    model = vlm(PIXTRAL)
    args: dict[str, Any] = {"engine": "v1", "max_model_len": 16000, "chunked": True}
    old = encoder_pass(model, version=V0110.parts, batched_tokens=8192, max_num_seqs=1024, **args)
    new = encoder_pass(model, version=V0120.parts, batched_tokens=8192, max_num_seqs=1024, **args)
    assert old is not None and new is not None
    assert old.cache_gib == pytest.approx(2 * 8192 * 5120 * 2 / GIB)
    assert new.cache_gib == pytest.approx(2 * 3025 * 5120 * 2 / GIB)


def test_encoder_cache_is_held_through_the_text_pass_and_the_sampler() -> None:
    # gpu_model_runner.py profile_run: self.encoder_cache["tmp"] = dict(enumerate(outputs)),
    # then _dummy_run and _dummy_sampler_run, and only then self.encoder_cache.clear()
    model = vlm(PIXTRAL)
    mm = encoder_pass(
        model,
        engine="v1",
        version=V0110.parts,
        batched_tokens=8192,
        max_num_seqs=1024,
        max_model_len=16000,
        chunked=True,
    )
    assert mm is not None
    plain = activation_gib(model, 8192, 1024, engine="v1")
    with_mm = activation_gib(model, 8192, 1024, engine="v1", encoder=mm)
    assert with_mm == pytest.approx(max(mm.encoder_gib, plain + mm.cache_gib))


def test_encoder_pass_is_the_peak_when_the_text_pass_is_small() -> None:
    # A 0.5B text model behind Qwen2.5-VL's tower: 65536 patches through 32 blocks outweigh a
    # 2048-token text pass and a 16-request sampler, so the tower sets the profile's peak.
    model = vlm(QWEN25_VL, layers=24, hidden=896, intermediate=4864, vocab=151936)
    mm = encoder_pass(
        model,
        engine="v1",
        version=V0191.parts,
        batched_tokens=2048,
        max_num_seqs=16,
        max_model_len=32768,
        chunked=True,
    )
    assert mm is not None
    act = activation_gib(model, 2048, 16, engine="v1", encoder=mm)
    assert act == pytest.approx(mm.encoder_gib)
    assert act > 2 * activation_gib(model, 2048, 16, engine="v1")


def test_v0_cuts_the_dummy_batch_to_one_image_per_request() -> None:
    # vllm/worker/model_runner.py GPUModelRunnerBase.profile_run:
    #   max_num_seqs = min(max_num_seqs, max_num_batched_tokens // max_mm_tokens)
    #   if max_num_seqs < 1: ... max_num_seqs = 1
    # and vllm/multimodal/profiling.py get_decoder_dummy_data only pads a prompt, so the one
    # dummy request keeps all of its 16384 image placeholders
    model = vlm(QWEN25_VL, layers=28, hidden=3584, intermediate=18944, vocab=152064)
    mm = encoder_pass(
        model,
        engine="v0",
        version=V073.parts,
        batched_tokens=8192,
        max_num_seqs=256,
        max_model_len=8192,
        chunked=False,
    )
    assert mm is not None
    assert (mm.profile_seqs, mm.items, mm.forward_tokens) == (1, 1, 16384)
    # the sampler samples the last token of each of those requests: 1, not 256
    act = activation_gib(model, 8192, 256, engine="v0", chunked=False, encoder=mm)
    forward = 16384 * 2 * (3 * 18944 + 2 * 3584) / GIB
    assert act == pytest.approx(
        max(mm.encoder_gib, forward + mm.cache_gib) + 1.5 * 152064 * 4 / GIB
    )
    # a small image: as many requests as hold one each
    siglip = vlm(SIGLIP_GEMMA3, hidden=3840)
    mm = encoder_pass(
        siglip,
        engine="v0",
        version=V073.parts,
        batched_tokens=8192,
        max_num_seqs=256,
        max_model_len=8192,
        chunked=False,
    )
    assert mm is not None
    assert (mm.profile_seqs, mm.items) == (8192 // 256, 32)


def test_limit_mm_per_prompt_zero_or_skip_turns_the_pass_off() -> None:
    # vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget: "All non-text modalities
    # supported by the model have been explicitly disabled via limit_mm_per_prompt", (0, 0);
    # gpu_model_runner.py profile_run: skip_mm_profiling skips the encoder pass
    model = vlm(PIXTRAL)
    engine = Engine(model=model, version=V0110, gpu_memory_utilization=0.95, max_model_len=16000)
    on = estimate(engine, H100)
    off = estimate(replace(engine, mm=MmSettings(image_limit=0)), H100)
    skipped = estimate(replace(engine, mm=MmSettings(skip_profiling=True)), H100)
    text = estimate(replace(engine, model=text_only(model)), H100)
    assert on.mm_encoder is not None and off.mm_encoder is None and skipped.mm_encoder is None
    assert off.activation_gib == pytest.approx(text.activation_gib)
    assert skipped.kv_cache_gib == pytest.approx(text.kv_cache_gib)
    assert on.kv_cache_gib < off.kv_cache_gib
    assert on.as_dict()["mm_encoder"]["items"] == 2
    # a lower limit only caps images per prompt: with 1024 requests the batch is unchanged
    one = estimate(replace(engine, mm=MmSettings(image_limit=1)), H100)
    assert one.mm_encoder is not None and one.mm_encoder.items == 2


def test_limit_flag_forms() -> None:
    # vllm/config/multimodal.py limit_per_prompt: JSON {"image": 16, "video": 2}; v0.12 also
    # {"image": {"count": 1, ...}}; older releases took image=16,video=2
    assert limit_from_flag('{"image": 0}') == 0
    assert limit_from_flag({"image": 4, "video": 1}) == 4
    assert limit_from_flag({"image": {"count": 2, "width": 512, "height": 512}}) == 2
    assert limit_from_flag("image=3,video=0") == 3
    assert limit_from_flag('{"video": 1}') is None
    for bad in ("{not json", "image", '{"image": -1}', '{"image": true}', "[1]"):
        with pytest.raises(ValueError):
            limit_from_flag(bad)


def test_flags_as_extra_config_and_extra_args_give_them() -> None:
    # vllm/config/multimodal.py MultiModalConfig: limit_per_prompt, skip_mm_profiling,
    # mm_encoder_tp_mode ("weights" | "data")
    mm = apply_mm_flag(None, "limit-mm-per-prompt", {"image": 0})
    mm = apply_mm_flag(mm, "mm-encoder-tp-mode", "data")
    assert mm == MmSettings(image_limit=0, encoder_tp_data=True)
    assert apply_mm_flag(mm, "skip-mm-profiling", "").skip_profiling
    assert not apply_mm_flag(mm, "no-skip-mm-profiling", True).skip_profiling
    for flag, value, want in (
        ("limit-mm-per-prompt", "image", "JSON"),
        ("mm-encoder-tp-mode", "pipeline", "weights or data"),
        ("skip-mm-profiling", "maybe", "true or false"),
    ):
        with pytest.raises(ValueError, match=want):
            apply_mm_flag(None, flag, value)


def test_encoder_tp_mode_data_splits_images_not_widths() -> None:
    # vllm/config/multimodal.py mm_encoder_tp_mode: "weights" splits each layer's weights
    # across TP ranks, "data" splits the batched input across them with the full weights
    model = vlm(SIGLIP_GEMMA3, hidden=3840)
    args: dict[str, Any] = {"engine": "v1", "version": V0191.parts, "max_model_len": 32768}
    args.update({"batched_tokens": 2048, "max_num_seqs": 256, "chunked": True, "tp": 2})
    weights = encoder_pass(model, **args)
    data = encoder_pass(model, settings=MmSettings(encoder_tp_data=True), **args)
    assert weights is not None and data is not None
    assert weights.items == data.items == 8
    assert data.patches == weights.patches // 2


def test_hub_config_carries_the_tower_to_the_encoder_pass() -> None:
    # a config.json read from the Hub (or --model-config) keeps its vision_config
    config = {
        "model_type": "qwen2_5_vl",
        "hidden_size": 3584,
        "num_hidden_layers": 28,
        "num_attention_heads": 28,
        "num_key_value_heads": 4,
        "intermediate_size": 18944,
        "vocab_size": 152064,
        "max_position_embeddings": 128000,
        "vision_config": QWEN25_VL,
    }
    spec = spec_from_config(config, name="Qwen/Qwen2.5-VL-7B-Instruct")
    tower = vision_tower(spec)
    assert tower is not None and tower.tokens_per_item == 16384
    engine = Engine(model=replace(spec, weights_gb=16.58), version=V0191, max_model_len=8192)
    est = estimate(engine, RTX3090)
    assert est.mm_encoder is not None and est.mm_encoder.items == 1
    assert est.activation_gib == pytest.approx(est.mm_encoder.encoder_gib)


def test_top_level_image_keys_reach_the_tower() -> None:
    # Gemma 3 publishes mm_tokens_per_image beside vision_config, not in it (google/gemma-3-12b-it
    # config.json); vLLM's Gemma3ProcessingInfo reads it from the top-level config
    from archon.paths import data_file

    path = data_file("hub", "google--gemma-3-12b-it", "config.json")
    config = json.loads(path.read_text(encoding="utf-8"))
    assert "mm_tokens_per_image" not in config["vision_config"]
    tower = vision_tower(spec_from_config(config, name="google/gemma-3-12b-it"))
    assert tower is not None and tower.tokens_per_item == config["mm_tokens_per_image"] == 256


def test_explain_names_the_encoder_pass_and_its_source() -> None:
    model = vlm(PIXTRAL)
    engine = Engine(model=model, version=V0110, gpu_memory_utilization=0.95, max_model_len=16000)
    rows = {row.name: row for row in steps(engine, estimate(engine, H100))}
    assert rows["encoder pass"].arithmetic.startswith("2 images of 3025 tokens")
    assert "compute_mm_encoder_budget" in rows["encoder pass"].source
    assert rows["activation peak"].arithmetic.startswith("max(encoder pass, encoder outputs + ")
    text = replace(engine, model=text_only(model))
    assert "encoder pass" not in {row.name for row in steps(text, estimate(text, H100))}


def test_extra_args_and_extra_config_reach_the_encoder_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the chart appends model.extraArgs to vLLM's command line and merges model.extraConfig
    # into its config file; --limit-mm-per-prompt '{"image": 0}' leaves no encoder budget
    # (vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget returns (0, 0))
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    qwen_vl = {"model": {"name": "Qwen/Qwen2.5-VL-7B-Instruct", "maxModelLen": 8192}}
    on = check_values(qwen_vl, gpu="RTX 4090").as_dict()
    assert on["mm_encoder"]["items"] == 1 and on["mm_encoder"]["tokens_per_item"] == 16384
    off_args = {
        "model": {**qwen_vl["model"], "extraArgs": ["--limit-mm-per-prompt", '{"image":0}']}
    }
    off = check_values(off_args, gpu="RTX 4090").as_dict()
    assert off["mm_encoder"] is None
    assert off["kv_cache_tokens"] > on["kv_cache_tokens"]
    skip = {"model": {**qwen_vl["model"], "extraConfig": {"skip-mm-profiling": True}}}
    assert check_values(skip, gpu="RTX 4090").as_dict()["mm_encoder"] is None
    bad = {"model": {**qwen_vl["model"], "extraArgs": ["--mm-encoder-tp-mode", "pipeline"]}}
    problems = check_values(bad, gpu="RTX 4090").as_dict()["problems"]
    assert any(
        p["key"] == "model.extraArgs" and "--mm-encoder-tp-mode" in p["message"] for p in problems
    )


# ---- where the tower's weights are: every pipeline stage, none at a limit of 0 ----------------


def _without_tower_by_hand(model: ModelSpec) -> ModelSpec:
    """The same checkpoint less the tower's 16-bit parameters."""
    tower_gb = 2 * model.encoder_params / 1e9
    return replace(model, encoder_params=0, weights_gb=model.checkpoint_gb() - tower_gb)


def test_the_vision_tower_is_loaded_on_every_pipeline_stage() -> None:
    # v0.19.1 vllm/model_executor/models/gemma3_mm.py Gemma3ForConditionalGeneration.__init__:
    # `with self._mark_tower_model(vllm_config, "image"): self.vision_tower =
    # SiglipVisionModel(...)` with no `get_pp_group()` guard, so every rank builds it; and
    # gpu_model_runner.py profile_run encodes the dummy images on every rank
    from archon.preflight.catalog import load_catalog

    gemma = load_catalog().find("google/gemma-3-12b-it")
    assert gemma.encoder_params > 0.4e9
    tower_gib = 2 * gemma.encoder_params / GIB
    engine = Engine(model=gemma, version=V0191, max_model_len=8192, pipeline_parallel_size=2)
    card = GpuBudget("RTX 5090", 31.36, arch="sm_120")
    with_tower = estimate(engine, card).stages
    plain_model = text_only(_without_tower_by_hand(gemma))
    text = estimate(replace(engine, model=plain_model), card).stages
    for stage, plain in zip(with_tower, text, strict=True):
        assert stage["weights_gib"] - plain["weights_gib"] == pytest.approx(tower_gib, abs=0.02)
    # the encoder pass is the first stage's activation peak (no sampler there)
    assert with_tower[0]["activation_gib"] > text[0]["activation_gib"] + 0.5


@pytest.mark.parametrize(
    ("vision", "tag", "limits", "dropped"),
    [
        # interfaces.py _mark_tower_model (v0.16.0, v0.19.1): `no_init_weights(...)` "if
        # all(mm_config.get_limit_per_prompt(m) == 0 for m in modalities)"
        (PIXTRAL, "v0.19.1", {"image": 0}, True),
        (PIXTRAL, "v0.16.0", {"image": 0}, True),
        (PIXTRAL, "v0.19.1", {"image": 1}, False),
        # v0.12.0 gemma3_mm.py / pixtral.py build the tower whatever the limit (mistral3.py
        # already checks; not told apart here, so counted)
        (PIXTRAL, "v0.12.0", {"image": 0}, False),
        # qwen2_5_vl.py: `with self._mark_tower_model(vllm_config, {"image", "video"})`: video
        # keeps the tower; v0.10.1-v0.12.0 `if get_limit_per_prompt("image") or
        # get_limit_per_prompt("video"): self.visual = ... else: self.visual = None`
        (QWEN25_VL, "v0.19.1", {"image": 0}, False),
        (QWEN25_VL, "v0.19.1", {"image": 0, "video": 0}, True),
        (QWEN25_VL, "v0.10.1", {"image": 0, "video": 0}, True),
        (QWEN25_VL, "v0.9.2", {"image": 0, "video": 0}, False),
    ],
)
def test_a_limit_of_zero_drops_the_tower_weights_where_vllm_skips_it(
    vision: dict[str, Any], tag: str, limits: dict[str, int], dropped: bool
) -> None:
    model = replace(vlm(vision), encoder_params=600_000_000)
    mm = apply_mm_flag(None, "limit-mm-per-prompt", json.dumps(limits))
    engine = Engine(model=model, version=release(tag), max_model_len=8192, mm=mm)
    est = estimate(engine, H100)
    loaded = estimate(replace(engine, mm=None), H100).weights_gib
    text = estimate(replace(engine, model=_without_tower_by_hand(model), mm=None), H100)
    expected = text.weights_gib if dropped else loaded
    assert est.weights_gib == pytest.approx(expected, abs=1e-9)
    assert est.tower_skipped is dropped
    assert loaded - text.weights_gib == pytest.approx(1.2e9 / GIB)  # the test is not vacuous
    weights = {step.name: step for step in steps(engine, est)}["weights"]
    assert ("_mark_tower_model" in weights.source) is dropped
