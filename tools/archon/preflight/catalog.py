"""Model catalog: config.json facts and checkpoint sizes, from the bundled data or the user's files.

The catalog is read offline. A model outside it is read from the Hugging Face Hub
(`archon.preflight.hub`), or from `--model-config config.json` plus `--weights-gib N` or
`--safetensors-index model.safetensors.index.json` (else the size is estimated from the parameter
count, which the report says).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archon.errors import UsageError
from archon.paths import data_file
from archon.preflight._yaml import load_yaml

BUILTIN_CATALOG = data_file("models", "catalog.yaml")

GB = 1000**3
GIB = 1024**3

QUANTIZATIONS = ("none", "gptq", "awq", "fp8", "mxfp4", "bnb")
# vLLM spellings that map onto the checkpoint formats above.
QUANT_ALIASES = {
    "": "none",
    "auto": "none",
    "null": "none",
    "gptq_marlin": "gptq",
    "gptq-int4": "gptq",
    "awq_marlin": "awq",
    "bitsandbytes": "bnb",
    "fp8_dynamic": "fp8",
    "compressed-tensors": "fp8",
}

# Bytes per parameter of the quantized linear layers; embeddings and lm_head stay 16-bit in all
# of these formats. 4-bit formats carry group-128 fp16 scales and 4-bit zeros (~4%).
# Sources: GPTQ/AWQ/bitsandbytes checkpoint layouts; checked against the Qwen2.5-Coder sizes in
# the Hub's file listings (model.safetensors.index.json total_size; 14B GPTQ estimate 9.98 GB vs
# 9.98 GB listed).
_LINEAR_BYTES = {
    "none": 2.0,
    "gptq": 0.5 * 1.04,
    "awq": 0.5 * 1.04,
    "bnb": 0.5 * 1.04,
    "fp8": 1.0,
    "mxfp4": 4.25 / 8,
}


def normalize_quantization(value: Any) -> str:
    text = "none" if value is None else str(value).strip().lower()
    return QUANT_ALIASES.get(text, text)


def _model_key(name: str) -> str:
    # "Qwen/Qwen2.5-7B (exact variant ...)" -> "qwen/qwen2.5-7b"; hub ids ignore case
    return name.strip().split(" ")[0].lower()


@dataclass(frozen=True)
class ModelSpec:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    max_positions: int
    dtype: str = "bfloat16"
    tied: bool = False
    qkv_bias: bool = False
    experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0
    shared_intermediate: int = 0
    dense_layers: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    # Sliding-window attention: the window in tokens and how many layers use it (the others
    # attend to the whole context). vLLM's hybrid KV cache manager gives those layers blocks for
    # the window only.
    sliding_window: int = 0
    sliding_layers: int = 0
    # Full-attention layers whose KV heads and head size differ from the sliding ones (Gemma 4:
    # num_global_key_value_heads and global_head_dim); 0 = the same as kv_heads / head_dim.
    global_kv_heads: int = 0
    global_head_dim: int = 0
    # The rotary embedding's cos/sin cache is a buffer vLLM builds at load, not a checkpoint
    # tensor: linear, dynamic-NTK and YaRN scaling build `rope_factor` times the positions, and
    # Gemma 3's sliding layers use a second, unscaled rope of their own (`local_rope`).
    rope_factor: float = 1.0
    local_rope: bool = False
    # Parameters of a multimodal model's vision encoder and projector: kept in 16 bits by every
    # quantization format here, and loaded by vLLM beside the language model.
    encoder_params: int = 0
    # The vision_config as published (every key), for what the encoder pass needs beyond the
    # parameter count (patch and merge sizes, window, depth); empty for a text-only model.
    vision_config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    quantization: str = "none"
    weights_gb: float | None = None
    weights_source: str = ""
    active_params_b: float | None = None
    min_vllm: str | None = None
    sources: tuple[str, ...] = ()
    # Where the facts came from: "catalog", "cache", "hub" or "--model-config"; the Hub commit.
    origin: str = "catalog"
    commit: str = ""

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def is_mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def is_hybrid(self) -> bool:
        return self.sliding_window > 0 and self.sliding_layers > 0

    @property
    def full_kv_heads(self) -> int:
        """KV heads of a full-attention layer (all layers unless the model says otherwise)."""
        return self.global_kv_heads or self.kv_heads

    @property
    def full_head_dim(self) -> int:
        return self.global_head_dim or self.head_dim

    @property
    def full_layers(self) -> int:
        """Layers attending to the whole context (the rest slide)."""
        if not self.is_hybrid:
            return self.layers
        return self.layers - min(self.sliding_layers, self.layers)

    @property
    def family(self) -> str:
        """The architecture family the memory model treats differently."""
        if self.is_mla:
            return "mla"
        if self.is_hybrid:
            return "sliding-window" if not self.is_moe else "sliding-window+moe"
        return "moe" if self.is_moe else "dense"

    def param_count(self) -> tuple[float, float]:
        """(linear-layer parameters, embedding + lm_head parameters), from the config alone."""
        h = self.hidden

        def attention(kv_heads: int, head_dim: int) -> int:
            q = self.heads * head_dim
            kv = kv_heads * head_dim
            return h * q + 2 * h * kv + q * h + (q + 2 * kv if self.qkv_bias else 0)

        full = self.full_layers
        attn_total = (self.layers - full) * attention(self.kv_heads, self.head_dim)
        attn_total += full * attention(self.full_kv_heads, self.full_head_dim)
        dense_mlp = 3 * h * self.intermediate
        if self.is_moe:
            moe_mlp = self.experts * 3 * h * self.moe_intermediate + h * self.experts
            moe_mlp += 3 * h * self.shared_intermediate
            dense = self.dense_layers
            mlp_total = dense * dense_mlp + (self.layers - dense) * moe_mlp
        else:
            mlp_total = self.layers * dense_mlp
        linear = attn_total + mlp_total
        embed = self.vocab * h * (1 if self.tied else 2)
        return float(linear), float(embed)

    def checkpoint_gb(self) -> float:
        """Checkpoint size in decimal GB: the listed size, else the parameter-count estimate."""
        if self.weights_gb is not None:
            return self.weights_gb
        linear, embed = self.param_count()
        per_param = _LINEAR_BYTES.get(self.quantization, 2.0)
        return (linear * per_param + (embed + self.encoder_params) * 2.0) / GB

    @property
    def weights_estimated(self) -> bool:
        return self.weights_gb is None

    def active_gb(self) -> float:
        """Bytes read per decoded token (weights of the experts actually used, for MoE)."""
        total = self.checkpoint_gb()
        if not self.is_moe:
            return total
        if self.active_params_b is not None:
            linear, embed = self.param_count()
            return total * min(1.0, self.active_params_b * 1e9 / (linear + embed))
        share = self.experts_per_token / self.experts
        linear, embed = self.param_count()
        expert_params = (
            (self.layers - self.dense_layers)
            * self.experts
            * 3
            * self.hidden
            * (self.moe_intermediate)
        )
        active = linear + embed - expert_params * (1 - share)
        return total * active / (linear + embed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "layers": self.layers,
            "hidden": self.hidden,
            "heads": self.heads,
            "kv_heads": self.kv_heads,
            "head_dim": self.head_dim,
            "intermediate": self.intermediate,
            "vocab": self.vocab,
            "max_positions": self.max_positions,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "checkpoint_gb": round(self.checkpoint_gb(), 2),
            "weights_estimated": self.weights_estimated,
        }


_INT_FIELDS = (
    "layers",
    "hidden",
    "heads",
    "kv_heads",
    "head_dim",
    "intermediate",
    "vocab",
    "max_positions",
)
_OPTIONAL_INT = (
    "experts",
    "experts_per_token",
    "moe_intermediate",
    "shared_intermediate",
    "dense_layers",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "sliding_window",
    "sliding_layers",
    "global_kv_heads",
    "global_head_dim",
)
# The catalog's short names for a vision tower's keys, and the config.json keys they stand for;
# any other key of a catalog `vision` mapping is kept under its config.json name.
_VISION_SHORT = {
    "layers": "num_hidden_layers",
    "hidden": "hidden_size",
    "intermediate": "intermediate_size",
}


def _spec_from_entry(entry: dict[str, Any], where: str) -> ModelSpec:
    name = entry.get("name")
    arch = entry.get("arch")
    if not isinstance(name, str) or not isinstance(arch, dict):
        raise UsageError(
            f"catalog entry {name!r} needs `name` and an `arch` mapping",
            source=where,
            fix="follow the format in tools/archon/data/models/catalog.yaml",
        )
    fields: dict[str, Any] = {}
    for key in _INT_FIELDS:
        value = arch.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise UsageError(
                f"arch.{key} is {value!r}",
                key=f"models[{name!r}].arch.{key}",
                source=where,
                fix="give a positive integer from config.json",
            )
        fields[key] = value
    for key in _OPTIONAL_INT:
        fields[key] = int(arch.get(key, 0) or 0)
    weights = entry.get("weights_gb")
    sources = tuple(str(s) for s in entry.get("sources") or ())
    vision = arch.get("vision")
    if vision is not None and not isinstance(vision, dict):
        raise UsageError(
            f"arch.vision is {vision!r}",
            key=f"models[{name!r}].arch.vision",
            source=where,
            fix="give the vision_config keys as a mapping",
        )
    vision_config = {_VISION_SHORT.get(str(k), str(k)): v for k, v in (vision or {}).items()}
    fields["encoder_params"] = vision_params(vision_config, int(fields["hidden"]))
    fields["vision_config"] = vision_config
    return ModelSpec(
        name=name,
        dtype=str(arch.get("dtype", "bfloat16")),
        tied=bool(arch.get("tied", False)),
        qkv_bias=bool(arch.get("qkv_bias", False)),
        rope_factor=float(arch.get("rope_factor", 1.0) or 1.0),
        local_rope=bool(arch.get("local_rope", False)),
        quantization=normalize_quantization(entry.get("quantization")),
        weights_gb=float(weights) if weights is not None else None,
        weights_source="catalog" if weights is not None else "estimated from parameter count",
        active_params_b=entry.get("active_params_b"),
        min_vllm=str(entry["min_vllm"]) if entry.get("min_vllm") else None,
        sources=sources,
        **fields,
    )


class Catalog:
    def __init__(self, specs: list[tuple[ModelSpec, tuple[str, ...]]]) -> None:
        self._by_key: dict[str, ModelSpec] = {}
        self.specs: list[ModelSpec] = []
        for spec, aliases in specs:
            self.specs.append(spec)
            self._by_key[_model_key(spec.name)] = spec
            for alias in aliases:
                self._by_key.setdefault(_model_key(alias), spec)

    def get(self, name: str) -> ModelSpec | None:
        key = _model_key(name)
        spec = self._by_key.get(key)
        if spec is None and "/" not in key:  # a bare name such as "Qwen2.5-7B-Instruct"
            matches = [s for k, s in self._by_key.items() if k.split("/", 1)[-1] == key]
            spec = matches[0] if len(matches) == 1 else None
        return spec

    def find(self, name: str, *, key: str = "model.name") -> ModelSpec:
        spec = self.get(name)
        if spec is None:
            raise UsageError(
                f"model {name!r} is not in the catalog",
                key=key,
                fix="name a Hugging Face repository (org/name), or pass --model-config "
                "path/to/config.json (and --weights-gib N or --safetensors-index FILE)",
            )
        return spec


_CATALOG: Catalog | None = None


def load_catalog() -> Catalog:
    global _CATALOG
    if _CATALOG is None:
        data = load_yaml(BUILTIN_CATALOG)
        entries = data.get("models", []) if isinstance(data, dict) else []
        _CATALOG = Catalog(
            [
                (_spec_from_entry(e, str(BUILTIN_CATALOG)), tuple(e.get("aliases") or ()))
                for e in entries
            ]
        )
    return _CATALOG


# ---- user-supplied config.json --------------------------------------------------------------


def _first(config: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if config.get(key) is not None:
            return config[key]
    return None


# What a config.json may leave out because transformers' config class supplies it; vLLM reads
# the filled-in config. Gemma 3's published configs omit head_dim, vocab_size and
# max_position_embeddings from text_config (transformers models/gemma3/configuration_gemma3.py
# Gemma3TextConfig defaults; models/gemma2/configuration_gemma2.py for Gemma 2;
# models/gemma4/configuration_gemma4.py Gemma4TextConfig, whose __post_init__ gives the
# full-attention layers 512-wide heads unless `global_head_dim` says otherwise).
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    "gemma4_text": {
        "head_dim": 256,
        "global_head_dim": 512,
        "vocab_size": 262144,
        "max_position_embeddings": 131072,
        "sliding_window": 512,
        "tie_word_embeddings": True,
    },
    "gemma3_text": {
        "head_dim": 256,
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
    "gemma2": {
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
        "sliding_window": 4096,
        "tie_word_embeddings": True,
    },
}


# Vision keys Gemma 3 and Mistral 3 publish beside vision_config rather than in it.
_VISION_TOP_LEVEL = ("mm_tokens_per_image", "spatial_merge_size")
# Architectures whose query/key/value projections carry a bias without saying so in the config.
_QKV_BIAS_TYPES = frozenset(
    {"qwen", "qwen2", "qwen2_vl", "qwen2_vl_text", "qwen2_5_vl", "qwen2_5_vl_text"}
)
_MAX_LEN_KEYS = (
    "max_position_embeddings",
    "n_positions",
    "max_seq_len",
    "seq_length",
    "model_max_length",
    "max_target_positions",
    "max_sequence_length",
    "max_seq_length",
    "seq_len",
)


# Scalings whose cos/sin cache holds factor x the positions (vllm/model_executor/layers/
# rotary_embedding: linear_scaling_rope.py `max_len = self.max_position_embeddings *
# scaling_factor`, dynamic_ntk_scaling_rope.py and yarn_scaling_rope.py alike).
_SCALED_ROPE = frozenset({"linear", "dynamic", "yarn"})


def rope_cache_from_config(
    config: dict[str, Any], model_type: str, max_pos: int
) -> tuple[float, bool]:
    """(cache rows / max_positions of the scaled rope, whether a second local rope exists).

    `rope_scaling` (or transformers v5's `rope_parameters`, which may be keyed by layer type);
    Gemma 3 gives its sliding layers their own rope over `rope_local_base_freq`
    (vllm/model_executor/models/gemma3.py Gemma3Attention)."""
    scaling = config.get("rope_scaling") or config.get("rope_parameters") or {}
    local = model_type in ("gemma3", "gemma3_text") or "rope_local_base_freq" in config
    if isinstance(scaling, dict) and isinstance(scaling.get("full_attention"), dict):
        local = local or isinstance(scaling.get("sliding_attention"), dict)
        scaling = scaling["full_attention"]
    if not isinstance(scaling, dict):
        return 1.0, local
    kind = str(scaling.get("rope_type") or scaling.get("type") or "")
    factor = scaling.get("factor")
    if kind not in _SCALED_ROPE or not isinstance(factor, (int, float)) or factor <= 1:
        return 1.0, local
    original = scaling.get("original_max_position_embeddings")
    if kind == "yarn" and isinstance(original, int) and 0 < original < max_pos:
        # YaRN caches original x factor rows (vllm yarn_scaling_rope.py _compute_cos_sin_cache)
        return float(original * factor / max_pos), local
    return float(factor), local


def spec_from_config(config: dict[str, Any], *, name: str, where: str = "") -> ModelSpec:
    """Read a Hugging Face config.json (text_config of multimodal wrappers is used when present)."""
    if isinstance(config.get("text_config"), dict):
        config = {**config, **config["text_config"]}
    config = {**CONFIG_DEFAULTS.get(str(config.get("model_type") or ""), {}), **config}
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    layers = _first(config, "num_hidden_layers", "n_layer", "num_layers")
    heads = _first(config, "num_attention_heads", "n_head")
    values = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "vocab_size": config.get("vocab_size"),
    }
    for key, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise UsageError(
                f"config.json has no usable `{key}` ({value!r})",
                key="--model-config",
                source=where,
                fix="pass the model's own config.json",
            )
    model_type = str(config.get("model_type") or "")
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or config.get("kv_channels") or hidden // heads
    intermediate = _first(config, "intermediate_size", "ffn_dim", "n_inner") or 4 * hidden
    if model_type == "qwen":
        # Qwen (1.0) counts both gate and up projections in intermediate_size; each is half
        # (vllm/model_executor/models/qwen.py QWenMLP(hidden_size, intermediate_size // 2))
        intermediate //= 2
    # vLLM takes the smallest length any of these keys allows (vllm/config, ModelConfig
    # possible_keys in _get_and_verify_max_len); Qwen-7B says 32768 positions, seq_length 8192
    lengths = [
        config[key]
        for key in _MAX_LEN_KEYS
        if isinstance(config.get(key), int) and not isinstance(config.get(key), bool)
    ]
    max_pos = min(lengths) if lengths else 2048
    quant_cfg = config.get("quantization_config") or {}
    quant = normalize_quantization(quant_cfg.get("quant_method") if quant_cfg else None)
    if quant == "bitsandbytes":
        quant = "bnb"
    experts = _first(config, "num_local_experts", "num_experts", "n_routed_experts") or 0
    window, sliding = sliding_layers_from_config(config, int(layers))
    rope_factor, local_rope = rope_cache_from_config(config, model_type, int(max_pos))
    global_kv, global_dim = global_attention_from_config(config, int(kv_heads), int(head_dim))
    # Gemma 4 runs its dense MLP (intermediate_size) beside the routed experts in every layer,
    # which is what a shared expert is (vllm/model_executor/models/gemma4.py Gemma4DecoderLayer)
    shared = config.get("shared_expert_intermediate_size") or (
        intermediate if config.get("enable_moe_block") else 0
    )
    vision = config.get("vision_config")
    if isinstance(vision, dict):
        # Gemma 3 and Mistral 3 publish these beside vision_config, not in it
        vision = {
            **{k: config[k] for k in _VISION_TOP_LEVEL if k in config and k not in vision},
            **vision,
        }
    encoder = vision_params(vision, int(hidden)) if isinstance(vision, dict) else 0
    return ModelSpec(
        name=name,
        layers=int(layers),
        hidden=int(hidden),
        heads=int(heads),
        kv_heads=int(kv_heads),
        head_dim=int(head_dim),
        intermediate=int(intermediate),
        vocab=int(config["vocab_size"]),
        max_positions=int(max_pos),
        dtype=str(config.get("torch_dtype") or config.get("dtype") or "bfloat16"),
        tied=bool(config.get("tie_word_embeddings", False)),
        qkv_bias=bool(config.get("attention_bias", False) or model_type in _QKV_BIAS_TYPES),
        experts=int(experts),
        experts_per_token=int(
            _first(config, "num_experts_per_tok", "experts_per_token", "top_k_experts") or 0
        ),
        moe_intermediate=int(
            config.get("moe_intermediate_size") or (intermediate if experts else 0)
        ),
        shared_intermediate=int(shared),
        dense_layers=int(config.get("first_k_dense_replace") or 0),
        kv_lora_rank=int(config.get("kv_lora_rank") or 0),
        qk_rope_head_dim=int(config.get("qk_rope_head_dim") or 0),
        sliding_window=window,
        sliding_layers=sliding,
        global_kv_heads=global_kv,
        global_head_dim=global_dim,
        rope_factor=rope_factor,
        local_rope=local_rope,
        encoder_params=encoder,
        vision_config=dict(vision) if isinstance(vision, dict) else {},
        quantization=quant,
        weights_source="estimated from parameter count",
        sources=(where,) if where else (),
    )


# Vision towers whose MLP is gated (three projections) although their activation is not silu.
_GATED_VISION = ("gemma4_vision",)


def vision_params(vision: dict[str, Any], text_hidden: int) -> int:
    """Parameters of a ViT-style vision encoder (SigLIP, CLIP, Pixtral, Qwen-VL, Gemma 4) and its
    projector into the language model, from its vision_config: per layer the four attention
    projections and the MLP (gated when `hidden_act` is silu, as Pixtral's and Qwen-VL's, or for
    Gemma 4's tower), plus patch and position embeddings. The projector is one linear layer,
    or Qwen-VL's patch merger (an MLP over `spatial_merge_size`^2 patches into
    `out_hidden_size`, transformers models/qwen2_5_vl Qwen2_5_VLPatchMerger). 0 when the config
    does not describe a tower."""
    hidden = vision.get("hidden_size") or vision.get("embed_dim")
    layers = vision.get("num_hidden_layers") or vision.get("depth")
    inter = vision.get("intermediate_size")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, inter)):
        return 0
    assert isinstance(hidden, int) and isinstance(layers, int) and isinstance(inter, int)
    act = vision.get("hidden_act") or vision.get("hidden_activation")
    gated = act == "silu" or vision.get("model_type") in _GATED_VISION
    mlp = (3 if gated else 2) * hidden * inter
    patch = int(vision.get("patch_size") or 14)
    frames = int(vision.get("temporal_patch_size") or 1)
    image = int(vision.get("image_size") or 0)
    if image:
        positions = (image // patch) ** 2
    elif vision.get("position_embedding_size"):
        # Gemma 4: one learned table per image axis (Gemma4VisionPatchEmbedder)
        positions = 2 * int(vision["position_embedding_size"])
    else:
        positions = int(vision.get("num_position_embeddings") or 0)
    embeddings = 3 * frames * patch * patch * hidden + positions * hidden
    merge = int(vision.get("spatial_merge_size") or 0)
    out = vision.get("out_hidden_size")
    if merge > 1 and isinstance(out, int) and out > 0:
        merged = hidden * merge * merge
        projector = merged * merged + merged * out
    else:
        projector = hidden * text_hidden
    return layers * (4 * hidden * hidden + mlp) + embeddings + projector


def global_attention_from_config(
    config: dict[str, Any], kv_heads: int, head_dim: int
) -> tuple[int, int]:
    """(KV heads, head size) of the full-attention layers when they differ from the sliding
    ones, else (0, 0). Gemma 4 widens the full layers' heads to `global_head_dim` and, with
    `attention_k_eq_v`, uses `num_global_key_value_heads` of them
    (vllm/model_executor/models/gemma4.py Gemma4DecoderLayer); newer transformers writes the
    same as `per_layer_config` entries for the full-attention layers."""
    dim = config.get("global_head_dim")
    heads = config.get("num_global_key_value_heads") if config.get("attention_k_eq_v") else None
    per_layer = config.get("per_layer_config")
    types = config.get("layer_types")
    if isinstance(per_layer, dict):
        for index, entry in per_layer.items():
            layer = int(index) if str(index).isdigit() else -1
            if (
                isinstance(types, list)
                and 0 <= layer < len(types)
                and types[layer] != "full_attention"
            ):
                continue
            if isinstance(entry, dict):
                dim = entry.get("head_dim", dim)
                heads = entry.get("num_key_value_heads", heads)
                break
    dim = dim if isinstance(dim, int) and dim > 0 else head_dim
    heads = heads if isinstance(heads, int) and heads > 0 else kv_heads
    if (heads, dim) == (kv_heads, head_dim):
        return 0, 0
    return int(heads), int(dim)


def sliding_layers_from_config(config: dict[str, Any], layers: int) -> tuple[int, int]:
    """(window, number of sliding-window layers) as vLLM's model code reads config.json.

    `layer_types` names each layer (gpt-oss, Gemma 3 in recent transformers); Gemma 2 alternates,
    sliding on even layers (vllm/model_executor/models/gemma2.py); Gemma 3 slides except every
    `sliding_window_pattern`-th layer (gemma3.py); Qwen2/Qwen3 carry a window but switch it off
    with `use_sliding_window: false`; a Mistral config with a window slides on every layer.
    """
    window = config.get("sliding_window")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return 0, 0
    if config.get("use_sliding_window") is False:
        return 0, 0
    types = config.get("layer_types")
    if isinstance(types, list) and types:
        return window, sum(1 for t in types[:layers] if t == "sliding_attention")
    model_type = str(config.get("model_type") or "")
    if model_type == "gemma2":
        return window, (layers + 1) // 2
    pattern = config.get("sliding_window_pattern")
    if isinstance(pattern, int) and pattern > 1:
        return window, layers - layers // pattern
    if model_type.startswith("gemma3"):
        return window, layers - layers // 6
    if model_type.startswith("gemma4"):
        # every sixth layer is full, and the last one always (Gemma4TextConfig.__post_init__)
        full = {i for i in range(layers) if (i + 1) % 6 == 0} | {layers - 1}
        return window, layers - len(full)
    return window, layers


def load_model_config(path: str | Path, *, name: str) -> ModelSpec:
    data = load_yaml(path) if str(path).endswith((".yaml", ".yml")) else _read_json(path)
    if not isinstance(data, dict):
        raise UsageError(
            "config.json is not a JSON object",
            key="--model-config",
            source=str(path),
            fix="pass the model's config.json",
        )
    return spec_from_config(data, name=name, where=str(path))


def _read_json(path: str | Path) -> Any:
    file = Path(path)
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError("file not found", source=str(path), fix="pass an existing file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"not a readable JSON file ({exc.__class__.__name__})",
            source=str(path),
            fix="pass the JSON file as downloaded from the hub",
        ) from None


def weights_from_safetensors_index(path: str | Path) -> float:
    """Checkpoint GB from model.safetensors.index.json (metadata.total_size, in bytes)."""
    data = _read_json(path)
    total = data.get("metadata", {}).get("total_size") if isinstance(data, dict) else None
    if not isinstance(total, int) or total <= 0:
        raise UsageError(
            "no positive metadata.total_size",
            key="--safetensors-index",
            source=str(path),
            fix="pass the model.safetensors.index.json of the model",
        )
    return total / GB


def with_weights(
    spec: ModelSpec, *, gib: float | None = None, gb: float | None = None, source: str = ""
) -> ModelSpec:
    if gib is not None:
        gb = gib * GIB / GB
    if gb is None:
        return spec
    return replace(spec, weights_gb=gb, weights_source=source or "user")
