"""How vLLM spreads one model over several GPUs: pipeline stages, expert and data parallel.

The memory model sizes one GPU at a time; this module says what each GPU holds.

- Pipeline parallel (`--pipeline-parallel-size`): the decoder layers are cut into consecutive
  stages (vllm/distributed/utils.py get_pp_indices, `VLLM_PP_LAYER_PARTITION` honoured); the
  input embedding lives on the first stage, the lm_head on the last (and, with tied embeddings,
  the embedding too), as the model code builds them (e.g. vllm/model_executor/models/qwen2.py,
  `get_pp_group().is_first_rank` / `is_last_rank`). A vision tower is built on every stage: the
  multimodal models construct it with no pipeline guard (v0.19.1 gemma3_mm.py, qwen2_5_vl.py),
  and every rank's profile run pushes the dummy images through it.
- Data parallel (`--data-parallel-size`): every DP rank is an engine of its own on its own GPUs,
  with the whole attention and its own KV cache. The MoE layers are the exception: vLLM shards
  them over all DP x TP ranks, by expert with `--enable-expert-parallel`
  (vllm/model_executor/layers/fused_moe/layer.py determine_expert_map), else by the experts'
  intermediate size (vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig.make,
  `flatten_tp_across_dp`). Either way one GPU holds 1 / (DP x TP) of the expert weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from archon.preflight.catalog import GB, ModelSpec

# The "KV cache is needed" check of a pipeline: vLLM checks each worker's own layers against its
# own memory, except for the releases where get_kv_cache_configs (vllm/v1/core/kv_cache_utils.py)
# checked every layer of the model against the smallest worker's memory, "using the unified
# specs" (introduced by vllm-project/vllm#29431, first released in v0.14.0). The per-worker
# check came back with vllm-project/vllm#33698: v0.16.0 still calls
# `_check_enough_kv_cache_memory(min(available_memory), ... global_kv_cache_groups)`, v0.17.0
# loops over `projected_groups_per_worker` with each worker's own memory.
PP_UNIFIED_KV_CHECK = ((0, 14, 0), (0, 17, 0))


class PartitionError(ValueError):
    """A VLLM_PP_LAYER_PARTITION vLLM would refuse (the message is vLLM's reason)."""


def parse_partition(text: str) -> tuple[int, ...]:
    """`VLLM_PP_LAYER_PARTITION` as vLLM reads it: comma-separated integers."""
    try:
        parts = tuple(int(layer) for layer in str(text).split(","))
    except ValueError:
        raise PartitionError(f"invalid partition string {text!r}") from None
    return parts


def layer_counts(layers: int, pp: int, partition: Sequence[int] | None = None) -> list[int]:
    """Layers per pipeline stage, as vllm/distributed/utils.py get_pp_indices splits them.

    Without a partition: layers // pp each, and the remainder one by one to the stages before
    the last, starting from the second-to-last (the last stage carries the final norm and the
    lm_head).
    """
    pp = max(1, pp)
    if partition is not None:
        if len(partition) != pp:
            raise PartitionError(f"{len(partition)} entries do not match pipeline size {pp}")
        if sum(partition) != layers:
            raise PartitionError(f"the entries sum to {sum(partition)}, the model has {layers}")
        return list(partition)
    if pp > layers:
        raise PartitionError(f"pipeline size {pp} exceeds the model's {layers} layers")
    counts = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        counts[-i] += 1
    return counts


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: which layers it runs and whether it holds the embeddings."""

    index: int
    first_layer: int
    layers: int
    count: int  # pipeline size

    @property
    def first(self) -> bool:
        return self.index == 0

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


def stages(model: ModelSpec, pp: int = 1, partition: Sequence[int] | None = None) -> list[Stage]:
    counts = layer_counts(model.layers, pp, partition)
    out, start = [], 0
    for index, count in enumerate(counts):
        out.append(Stage(index, start, count, len(counts)))
        start += count
    return out


def moe_ranks(model: ModelSpec, tp: int = 1, dp: int = 1) -> int:
    """The GPUs one MoE layer's experts are spread over: DP x TP (one engine's TP otherwise)."""
    return max(1, tp) * (max(1, dp) if model.is_moe else 1)


def expert_parallel_size(model: ModelSpec, tp: int, dp: int, enabled: bool) -> int:
    """EP size: TP x DP with --enable-expert-parallel on an MoE model, else 1 (no EP)."""
    ranks = moe_ranks(model, tp, dp)
    return ranks if enabled and model.is_moe and ranks > 1 else 1


def local_experts(model: ModelSpec, ep_size: int, ep_rank: int = 0) -> int:
    """Experts one EP rank holds: an even share, the remainder to the first ranks
    (determine_expert_map, the "linear" placement)."""
    if ep_size <= 1:
        return model.experts
    base, remainder = divmod(model.experts, ep_size)
    return base + 1 if ep_rank < remainder else base


@dataclass(frozen=True)
class _Parts:
    """The checkpoint in bytes by where vLLM puts it."""

    embedding: float  # the input embedding (16-bit)
    lm_head: float  # 0 when tied to the embedding
    encoder: float  # a vision tower and its projector, on every stage
    attention: float  # per layer: attention, norms, router, shared experts
    dense_mlp: float  # per dense layer
    experts: float  # per MoE layer: every routed expert


def _parts(model: ModelSpec) -> tuple[_Parts, int]:
    """Split the checkpoint size by parameter count; linear layers share its quantized bytes."""
    h = model.hidden
    q = model.heads * model.head_dim
    kv = model.kv_heads * model.head_dim
    attention = h * q + 2 * h * kv + q * h + (q + 2 * kv if model.qkv_bias else 0)
    dense_mlp = 3.0 * h * model.intermediate
    experts = 0.0
    if model.is_moe:
        attention += h * model.experts + 3 * h * model.shared_intermediate
        experts = model.experts * 3.0 * h * model.moe_intermediate
    dense_layers = model.dense_layers if model.is_moe else model.layers
    moe_layers = model.layers - dense_layers
    linear = model.layers * attention + dense_layers * dense_mlp + moe_layers * experts
    embedding = 2.0 * model.vocab * h
    head = 0.0 if model.tied else embedding
    encoder = 2.0 * model.encoder_params
    total = model.checkpoint_gb() * GB
    per_param = max(0.0, total - embedding - head - encoder) / linear if linear else 0.0
    return (
        _Parts(
            embedding,
            head,
            encoder,
            attention * per_param,
            dense_mlp * per_param,
            experts * per_param,
        ),
        dense_layers,
    )


def gpu_share(model: ModelSpec, stage: Stage, tp: int = 1, dp: int = 1) -> float:
    """The fraction of the whole checkpoint one GPU of this stage loads.

    Embedding, lm_head, attention and dense MLPs split over the stage's TP ranks; routed experts
    over DP x TP ranks. One stage, one DP rank: exactly 1 / TP.
    """
    tp = max(1, tp)
    ranks = moe_ranks(model, tp, dp)
    if stage.count == 1 and ranks == tp:
        return 1.0 / tp
    parts, dense_layers = _parts(model)
    held = parts.encoder
    if stage.first:
        held += parts.embedding
    elif stage.last and model.tied:
        held += parts.embedding  # the tied lm_head is the embedding, loaded on the last stage
    if stage.last:
        held += parts.lm_head
    end = stage.first_layer + stage.layers
    dense_here = max(0, min(end, dense_layers) - stage.first_layer)
    moe_here = stage.layers - dense_here
    held += stage.layers * parts.attention + dense_here * parts.dense_mlp
    sharded = held / tp + moe_here * parts.experts / ranks
    total = model.checkpoint_gb() * GB
    return sharded / total if total else 1.0 / tp
