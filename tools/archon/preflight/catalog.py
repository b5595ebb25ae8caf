"""Model catalog: config.json facts and checkpoint sizes, from the bundled data or the user's files.

The catalog is read offline. A model outside it is read from the Hugging Face Hub
(`archon.preflight.hub`), or from `--model-config config.json` plus `--weights-gib N` or
`--safetensors-index model.safetensors.index.json` (else the size is estimated from the parameter
count, which the report says).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
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
    # Parameters of a multimodal model's vision encoder and projector: kept in 16 bits by every
    # quantization format here, and loaded by vLLM beside the language model.
    encoder_params: int = 0
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
        q = self.heads * self.head_dim
        kv = self.kv_heads * self.head_dim
        attn = h * q + 2 * h * kv + q * h + (q + 2 * kv if self.qkv_bias else 0)
        dense_mlp = 3 * h * self.intermediate
        if self.is_moe:
            moe_mlp = self.experts * 3 * h * self.moe_intermediate + h * self.experts
            moe_mlp += 3 * h * self.shared_intermediate
            dense = self.dense_layers
            mlp_total = dense * dense_mlp + (self.layers - dense) * moe_mlp
        else:
            mlp_total = self.layers * dense_mlp
        linear = self.layers * attn + mlp_total
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
)


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
    fields["encoder_params"] = (
        vision_params(
            {
                "hidden_size": vision.get("hidden"),
                "num_hidden_layers": vision.get("layers"),
                "intermediate_size": vision.get("intermediate"),
                "image_size": vision.get("image_size"),
                "patch_size": vision.get("patch_size"),
                "hidden_act": vision.get("hidden_act"),
            },
            int(fields["hidden"]),
        )
        if isinstance(vision, dict)
        else 0
    )
    return ModelSpec(
        name=name,
        dtype=str(arch.get("dtype", "bfloat16")),
        tied=bool(arch.get("tied", False)),
        qkv_bias=bool(arch.get("qkv_bias", False)),
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
# Gemma3TextConfig defaults; models/gemma2/configuration_gemma2.py for Gemma 2).
CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
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
    kv_heads = config.get("num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    intermediate = _first(config, "intermediate_size", "ffn_dim", "n_inner") or 4 * hidden
    max_pos = _first(config, "max_position_embeddings", "n_positions", "max_seq_len") or 2048
    quant_cfg = config.get("quantization_config") or {}
    quant = normalize_quantization(quant_cfg.get("quant_method") if quant_cfg else None)
    if quant == "bitsandbytes":
        quant = "bnb"
    experts = _first(config, "num_local_experts", "num_experts", "n_routed_experts") or 0
    window, sliding = sliding_layers_from_config(config, int(layers))
    vision = config.get("vision_config")
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
        qkv_bias=bool(config.get("attention_bias", False) or config.get("model_type") == "qwen2"),
        experts=int(experts),
        experts_per_token=int(_first(config, "num_experts_per_tok", "experts_per_token") or 0),
        moe_intermediate=int(
            config.get("moe_intermediate_size") or (intermediate if experts else 0)
        ),
        shared_intermediate=int(config.get("shared_expert_intermediate_size") or 0),
        dense_layers=int(config.get("first_k_dense_replace") or 0),
        kv_lora_rank=int(config.get("kv_lora_rank") or 0),
        qk_rope_head_dim=int(config.get("qk_rope_head_dim") or 0),
        sliding_window=window,
        sliding_layers=sliding,
        encoder_params=encoder,
        quantization=quant,
        weights_source="estimated from parameter count",
        sources=(where,) if where else (),
    )


def vision_params(vision: dict[str, Any], text_hidden: int) -> int:
    """Parameters of a ViT-style vision encoder (SigLIP, CLIP, Qwen-VL) and a linear projector
    into the language model, from its vision_config: per layer the four attention projections
    and the MLP (gated when `hidden_act` is silu, as Qwen-VL's), plus patch and position
    embeddings. 0 when the config does not describe one."""
    hidden = vision.get("hidden_size") or vision.get("embed_dim")
    layers = vision.get("num_hidden_layers") or vision.get("depth")
    inter = vision.get("intermediate_size")
    if not all(isinstance(v, int) and v > 0 for v in (hidden, layers, inter)):
        return 0
    assert isinstance(hidden, int) and isinstance(layers, int) and isinstance(inter, int)
    mlp = (3 if vision.get("hidden_act") == "silu" else 2) * hidden * inter
    patch = int(vision.get("patch_size") or 14)
    image = int(vision.get("image_size") or 0)
    positions = (image // patch) ** 2 if image else 0
    embeddings = 3 * patch * patch * hidden + positions * hidden
    return layers * (4 * hidden * hidden + mlp) + embeddings + hidden * text_hidden


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
