"""The multimodal encoder pass of vLLM's profile run: what a vision tower adds to the peak.

Before the text forward pass, vLLM's profile run of a vision-language model pushes a dummy batch
of the largest image through the vision tower and keeps the outputs in the encoder cache while
the text forward and the sampler run (vllm/v1/worker/gpu_model_runner.py `profile_run`). How
many images, and how many tokens each, follows the encoder budget
(vllm/v1/core/encoder_cache_manager.py `compute_mm_encoder_budget`, vllm/v1/worker/utils.py
`MultiModalBudget.get_max_items`). The V0 engine runs the tower inside the model's forward and
cuts the dummy batch to as many requests as hold their images (one each by default)
(vllm/worker/model_runner.py `GPUModelRunnerBase.profile_run`), which also shrinks its sampler.

Only images are modelled (video and audio towers are not). The tower's activation per patch is
counted the way the text forward is (memory.py `activation_gib`): the MLP's intermediate
outputs and a few hidden-size tensors, 16-bit; attention runs in memory-efficient kernels
(FlashAttention, xFormers, SDPA), linear in the patches.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from archon.preflight.catalog import GB, ModelSpec

GIB = 1024**3
ACT_BYTES = 2  # the tower runs in the model's 16-bit dtype
# vLLM's default `limit_mm_per_prompt` per modality (vllm/config/multimodal.py
# MultiModalConfig.get_limit_per_prompt: 999 on V1, 1 on V0).
DEFAULT_LIMIT_V1 = 999
DEFAULT_LIMIT_V0 = 1
# Qwen2-VL / Qwen2.5-VL resize the largest image to at most max_pixels (the image processor's
# default, transformers Qwen2VLImageProcessor: 12845056 = 3584 x 3584); vLLM profiles that size
# (vllm/model_executor/models/qwen2_vl.py get_image_size_with_most_features).
QWEN_VL_MAX_PIXELS = 12845056
_QWEN_VL_TYPES = ("qwen2_vl", "qwen2_5_vl")
# From this release the profile run pads each cached dummy output to the tokens of one item
# ("dummy embeddings of size (max_tokens_for_modality, hidden_size)" in v0.12.0's
# gpu_model_runner.py profile_run); v0.11.0 padded it to the whole encoder budget ("of size
# (encode_budget, hidden_size)"). The releases between are counted the v0.11.0 way.
PAD_TO_ITEM_FROM = (0, 12, 0)
# A tower whose modalities all have a limit of 0 is never built, so its weights are never
# loaded: every model through SupportsMultiModal._mark_tower_model from v0.16.0
# (vllm/model_executor/models/interfaces.py: `no_init_weights(...)` "if all(
# mm_config.get_limit_per_prompt(m) == 0 for m in modalities)"; v0.12.0 has no such guard, and
# the releases between are not counted); Qwen2-VL and Qwen2.5-VL already from v0.10.1
# (qwen2_5_vl.py: `if get_limit_per_prompt("image") or get_limit_per_prompt("video"): self.visual
# = ...  else: self.visual = None`). Their towers serve images and video alike, so both limits
# must be 0 (`_mark_tower_model(vllm_config, {"image", "video"})`); Gemma 4's too.
TOWER_SKIP_FROM = (0, 16, 0)
QWEN_VL_TOWER_SKIP_FROM = (0, 10, 1)
_VIDEO_TOWER_TYPES = (*_QWEN_VL_TYPES, "qwen3_vl", "gemma4_vision")


@dataclass(frozen=True)
class VisionTower:
    """A ViT-style image encoder as the profile run sees it."""

    layers: int
    hidden: int
    intermediate: int
    gated: bool  # gate and up projections (silu MLP: Pixtral, Qwen-VL)
    patches_per_item: int  # patches of the largest image the processor produces
    tokens_per_item: int  # embeddings one such image puts into the language model
    values_per_patch: int  # pixel values per patch: channels x temporal x patch^2


@dataclass(frozen=True)
class MmSettings:
    """The engine flags that change the encoder pass (None = vLLM's default)."""

    image_limit: int | None = None  # --limit-mm-per-prompt {"image": N}; 0 turns the pass off
    video_limit: int | None = None  # --limit-mm-per-prompt {"video": N}
    skip_profiling: bool = False  # --skip-mm-profiling
    encoder_tp_data: bool = False  # --mm-encoder-tp-mode data: images split over TP ranks


@dataclass(frozen=True)
class EncoderPass:
    """What the encoder pass of one profile run adds, per GPU."""

    items: int  # dummy images in the batch
    tokens_per_item: int
    budget: int  # encoder budget in tokens (V1); V0: max_num_batched_tokens
    patches: int  # patches through the tower on this GPU
    encoder_gib: float  # peak of the tower pass: activations, pixel values and outputs
    cache_gib: float  # outputs held while the text forward and the sampler run
    profile_seqs: int | None = None  # V0: requests of the dummy batch (`limit` images each)
    forward_tokens: int = 0  # V0: tokens of the text pass, placeholders included

    def as_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "tokens_per_item": self.tokens_per_item,
            "budget": self.budget,
            "patches": self.patches,
            "encoder_gib": round(self.encoder_gib, 3),
            "cache_gib": round(self.cache_gib, 3),
            "profile_seqs": self.profile_seqs,
            "forward_tokens": self.forward_tokens or None,
        }


def _int(config: Mapping[str, Any], *keys: str) -> int:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def vision_tower(model: ModelSpec) -> VisionTower | None:
    """The tower described by the model's vision_config, or None (text-only, or too little
    said). Keys as in config.json; `mm_tokens_per_image` (Gemma 3's pooling to 256 tokens) and
    `spatial_merge_size` (Mistral 3, at the top level of its config.json) are read when the
    vision_config carries them, `max_pixels` for Qwen-VL's image processor."""
    config: Mapping[str, Any] = getattr(model, "vision_config", None) or {}
    layers = _int(config, "num_hidden_layers", "depth")
    hidden = _int(config, "hidden_size", "embed_dim")
    inter = _int(config, "intermediate_size")
    if not (layers and hidden and inter):
        return None
    act = config.get("hidden_act") or config.get("hidden_activation")
    patch = _int(config, "patch_size") or 14
    merge = _int(config, "spatial_merge_size") or 1
    frames = _int(config, "temporal_patch_size") or 1
    channels = _int(config, "num_channels", "in_chans", "in_channels") or 3
    image = _int(config, "image_size")
    if image:
        side = image // patch
        patches = side * side
        merged_side = image // (patch * merge)
        tokens = merged_side * merged_side
    else:
        pixels = _int(config, "max_pixels") or (QWEN_VL_MAX_PIXELS if _qwen_vl(config) else 0)
        if not pixels:
            return None
        # smart_resize: each side a multiple of patch x merge, the area within max_pixels
        unit = patch * merge
        side = int(math.isqrt(pixels) // unit) * unit
        patches = (side // patch) ** 2
        tokens = patches // (merge * merge)
    tokens = _int(config, "mm_tokens_per_image") or tokens
    return VisionTower(
        layers=layers,
        hidden=hidden,
        intermediate=inter,
        gated=act == "silu",
        patches_per_item=patches,
        tokens_per_item=max(1, tokens),
        values_per_patch=channels * frames * patch * patch,
    )


def _qwen_vl(config: Mapping[str, Any]) -> bool:
    """Qwen-VL's vision_config names no model_type in some published configs; its merged,
    two-frame patches tell it apart."""
    model_type = str(config.get("model_type") or "")
    merged = (_int(config, "spatial_merge_size") or 1) > 1
    return model_type in _QWEN_VL_TYPES or (merged and (_int(config, "temporal_patch_size") > 1))


def tower_skipped(
    model: ModelSpec, version: tuple[int, ...], settings: MmSettings | None, *, engine: str = "v1"
) -> bool:
    """Whether this release builds no vision tower, so loads none of its weights: every modality
    the tower serves has a limit of 0 (see TOWER_SKIP_FROM)."""
    if not model.encoder_params or settings is None or engine != "v1":
        return False
    config: Mapping[str, Any] = model.vision_config or {}
    qwen = _qwen_vl(config)
    video = qwen or str(config.get("model_type") or "") in _VIDEO_TOWER_TYPES
    limits = [settings.image_limit, settings.video_limit] if video else [settings.image_limit]
    if any(limit is None or limit > 0 for limit in limits):
        return False
    return tuple(version) >= (QWEN_VL_TOWER_SKIP_FROM if qwen else TOWER_SKIP_FROM)


def without_tower(model: ModelSpec) -> ModelSpec:
    """The model as loaded without its vision tower and projector (16-bit, as counted)."""
    tower_gb = 2.0 * model.encoder_params / GB
    listed = model.weights_gb
    return replace(
        model,
        encoder_params=0,
        weights_gb=None if listed is None else max(0.0, listed - tower_gb),
    )


def limit_from_flag(value: Any, modality: str = "image") -> int | None:
    """The limit for one modality of a `--limit-mm-per-prompt` value: a mapping or its JSON
    text ({"image": 0} turns the encoder pass off), else the older `image=N,video=M` form; None
    when the value names no limit for it. Raises ValueError for text vLLM would refuse."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            value = json.loads(text)
        else:
            pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError(value)
            value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, Mapping):
        raise ValueError(value)
    limit = value.get(modality)
    if limit is None:
        return None
    if isinstance(limit, Mapping):  # newer form: {"image": {"count": N, ...}}
        limit = limit.get("count")
    if isinstance(limit, bool) or not isinstance(limit, (int, str)):
        raise ValueError(value)
    number = int(limit)
    if number < 0:
        raise ValueError(value)
    return number


# The vLLM flags that change the encoder pass, as model.extraConfig / model.extraArgs give them.
MM_FLAGS = (
    "limit-mm-per-prompt",
    "skip-mm-profiling",
    "no-skip-mm-profiling",
    "mm-encoder-tp-mode",
)


def apply_mm_flag(current: MmSettings | None, flag: str, value: Any) -> MmSettings:
    """`current` with one of MM_FLAGS applied; ValueError (its text says what vLLM takes) for a
    value vLLM would refuse."""
    mm = current or MmSettings()
    if flag == "limit-mm-per-prompt":
        try:
            image, video = limit_from_flag(value), limit_from_flag(value, "video")
        except (ValueError, TypeError):
            raise ValueError('JSON such as {"image": 1}') from None
        return replace(mm, image_limit=image, video_limit=video)
    if flag == "mm-encoder-tp-mode":
        mode = str(value).strip().lower()
        if mode not in ("weights", "data"):
            raise ValueError("weights or data")
        return replace(mm, encoder_tp_data=mode == "data")
    text = str(value).strip().lower()
    if isinstance(value, bool):
        on = value
    elif text in ("", "true", "1", "yes", "on"):
        on = True
    elif text in ("false", "0", "no", "off"):
        on = False
    else:
        raise ValueError("true or false")
    return replace(mm, skip_profiling=on if flag == "skip-mm-profiling" else not on)


def encoder_pass(
    model: ModelSpec,
    *,
    engine: str,
    version: tuple[int, ...],
    batched_tokens: int,
    max_num_seqs: int,
    max_model_len: int,
    chunked: bool,
    tp: int = 1,
    settings: MmSettings | None = None,
) -> EncoderPass | None:
    """The dummy images of the profile run and the memory they take; None when there is none
    (a text-only model, `--skip-mm-profiling`, or an image limit of 0)."""
    tower = vision_tower(model)
    mm = settings or MmSettings()
    if tower is None or mm.skip_profiling:
        return None
    limit = mm.image_limit
    if limit is None:
        limit = DEFAULT_LIMIT_V1 if engine == "v1" else DEFAULT_LIMIT_V0
    if limit <= 0:
        return None
    per_item = tower.tokens_per_item
    profile_seqs: int | None = None
    forward_tokens = 0
    if engine == "v1":
        # compute_mm_encoder_budget: the budget is max_num_batched_tokens, raised to one item
        budget = max(batched_tokens, per_item)
        per_prompt = max(1, min(limit, max_model_len // per_item))
        reqs = max_num_seqs if chunked else min(max_num_seqs, batched_tokens // per_item)
        items = max(1, min(budget // per_item, reqs * per_prompt))
    else:
        # V0: max_num_seqs = min(max_num_seqs, batched // (limit x tokens per item)), at
        # least 1, each dummy request carrying `limit` images
        budget = batched_tokens
        profile_seqs = max(1, min(max_num_seqs, batched_tokens // (limit * per_item)))
        items = profile_seqs * limit
        # a dummy prompt is never cut below its image placeholders
        # (vllm/multimodal/profiling.py get_decoder_dummy_data pads, never truncates)
        forward_tokens = max(batched_tokens, items * per_item)
    tp = max(1, tp)
    if mm.encoder_tp_data:
        # each rank holds the whole tower and encodes its share of the images
        local_items = math.ceil(items / tp)
        width = tower.intermediate
    else:
        local_items = items
        width = math.ceil(tower.intermediate / tp)
    patches = local_items * tower.patches_per_item
    mlp = (3 if tower.gated else 2) * width
    per_patch = ACT_BYTES * (mlp + 4 * tower.hidden + tower.values_per_patch)
    outputs = local_items * per_item * model.hidden * ACT_BYTES
    encoder = (patches * per_patch + outputs) / GIB
    if engine == "v1":
        rows = per_item if tuple(version) >= PAD_TO_ITEM_FROM else budget
        cache = items * rows * model.hidden * ACT_BYTES / GIB
    else:
        # the image embeddings are merged into the text inputs of the same forward pass
        cache = items * per_item * model.hidden * ACT_BYTES / GIB
    return EncoderPass(
        items=items,
        tokens_per_item=per_item,
        budget=budget,
        patches=patches,
        encoder_gib=encoder,
        cache_gib=cache,
        profile_seqs=profile_seqs,
        forward_tokens=forward_tokens,
    )
