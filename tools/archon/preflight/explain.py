"""`archon preflight --explain`: the arithmetic line by line, each line naming the vLLM code it
follows (paths in the vllm-project/vllm repository)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from archon.preflight.catalog import ModelSpec
from archon.preflight.memory import (
    BLOCK_SIZE,
    FWD_TOKEN_FACTOR,
    GIB,
    LOAD_FACTOR,
    NON_TORCH_TP_EXTRA_GIB,
    NON_TORCH_TP_RAISED,
    NON_TORCH_TP_V1_GIB_FROM_019,
    NON_TORCH_V1_GIB,
    NON_TORCH_V1_GIB_FROM_018,
    NON_TORCH_V1_RAISED,
    SAMPLER_COPIES_V0_RANK0,
    SAMPLER_COPIES_V1_TRITON,
    Engine,
    MemoryEstimate,
    kv_dtype_bytes,
    kv_layout,
    mxfp4_padding,
    sampler_copies,
    weights_gib,
)
from archon.preflight.multimodal import without_tower
from archon.preflight.parallel import moe_ranks

WORKER = "vllm/v1/worker/gpu_worker.py determine_available_memory"
RUNNER = "vllm/v1/worker/gpu_model_runner.py"
KV_UTILS = "vllm/v1/core/kv_cache_utils.py"
KV_SPEC = "vllm/v1/kv_cache_interface.py"
FUSED_MOE = "vllm/model_executor/layers/fused_moe"


@dataclass(frozen=True)
class Step:
    name: str
    value: str
    arithmetic: str
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "value": self.value,
            "arithmetic": self.arithmetic,
            "source": self.source,
        }


def _gib(value: float) -> str:
    return f"{value:.2f} GiB"


def _kv_token_formula(model: ModelSpec, engine: Engine) -> str:
    size = kv_dtype_bytes(engine.kv_cache_dtype)
    tp = max(1, engine.tensor_parallel_size)
    if model.is_mla:
        return (
            f"{model.layers} layers x ({model.kv_lora_rank} latent + {model.qk_rope_head_dim} "
            f"rope) x {size} B (MLA: one latent per layer, the same on every rank)"
        )
    heads = max(1, math.ceil(model.kv_heads / tp))
    return (
        f"2 (K, V) x {model.layers} layers x {heads} KV heads x {model.head_dim} head_dim x "
        f"{size} B ({engine.kv_cache_dtype})"
    )


def parallel_steps(engine: Engine, est: MemoryEstimate) -> list[Step]:
    """What one GPU holds under data, expert and pipeline parallelism, one line per stage."""
    model = engine.model
    tp, dp = max(1, engine.tensor_parallel_size), max(1, engine.data_parallel_size)
    out: list[Step] = []
    if dp > 1 or est.expert_parallel_size > 1:
        ranks = moe_ranks(model, tp, dp)
        if est.expert_parallel_size > 1:
            experts = (
                f"expert parallel over {est.expert_parallel_size} ranks (TP {tp} x DP {dp}): "
                f"{est.local_experts} of {model.experts} experts per GPU"
            )
        elif model.is_moe:
            experts = f"experts' intermediate split over TP {tp} x DP {dp} = {ranks} GPUs"
        else:
            experts = "a dense model: every DP rank holds the whole model"
        out.append(
            Step(
                "data parallel",
                f"{dp} engines",
                f"each DP rank is an engine with its own KV cache; {experts}; attention and "
                f"embeddings split over TP {tp} only",
                f"{FUSED_MOE}/config.py FusedMoEParallelConfig.make; {FUSED_MOE}/layer.py "
                "determine_expert_map",
            )
        )
    for stage in est.stages:
        first, end = stage["layers"]
        held = [f"layers {first}-{end - 1}"]
        if stage["embedding"]:
            held.append("embedding")
        if stage["lm_head"]:
            held.append("lm_head and the sampler pass")
        out.append(
            Step(
                f"stage {stage['stage']}",
                _gib(stage["kv_cache_gib"]),
                f"{', '.join(held)} on {stage['gpu']} ({stage['gpu_total_gib']:.2f} GiB): weights "
                f"{stage['weights_gib']:.2f}, activation {stage['activation_gib']:.2f}, non-torch "
                f"{stage['non_torch_gib']:.2f} GiB; KV {stage['kv_cache_gib']:.2f} GiB = "
                f"{stage['gpu_blocks']} blocks of {stage['kv_bytes_per_token']} B/token",
                "vllm/distributed/utils.py get_pp_indices (VLLM_PP_LAYER_PARTITION); "
                f"{WORKER} (per worker)",
            )
        )
    if est.stages:
        check = (
            "every layer of the model against the smallest worker's KV memory (this release)"
            if est.kv_check == "unified"
            else "each worker's own layers against its own KV memory"
        )
        out.append(
            Step(
                "pipeline blocks",
                str(est.gpu_blocks),
                f"the smallest block count over {len(est.stages)} stages, given to every worker; "
                f"the memory check compares {check}",
                f"{KV_UTILS} get_kv_cache_configs",
            )
        )
    return out


def steps(engine: Engine, est: MemoryEstimate) -> list[Step]:
    model = engine.model
    tp = max(1, engine.tensor_parallel_size)
    factor = LOAD_FACTOR.get(model.quantization, 1.0)
    layout = kv_layout(model, hybrid=engine.hybrid_kv_enabled)
    loaded = without_tower(model) if est.tower_skipped else model
    moe_tp = 1 if est.expert_parallel_size > 1 else moe_ranks(model, tp, est.data_parallel_size)
    full = weights_gib(loaded, tp, mxfp4_backend=est.mxfp4_backend, moe_tp=moe_tp)
    checkpoint = est.weights_gib - est.rope_cache_gib
    sharded = checkpoint if abs(checkpoint - full) > 0.005 else 0.0
    if est.mxfp4_backend in ("marlin", "rocm"):
        kernel = "Marlin MoE kernel" if est.mxfp4_backend == "marlin" else "ROCm MoE kernels"
        aligns = "128, hidden to 256" if est.mxfp4_backend == "marlin" else "256, hidden to 256"
        padding = mxfp4_padding(model, moe_tp, est.mxfp4_backend)
        repack = (
            f" with the MXFP4 experts padded x{padding:.3f}"
            f" for the {kernel} (per-rank intermediate to a multiple of {aligns})"
        )
    elif est.mxfp4_backend == "triton":
        repack = (
            f" x {factor} (MXFP4 repack for the Triton MoE kernels; experts' per-rank "
            f"intermediate rounded to 64: x{mxfp4_padding(model, moe_tp, 'triton'):.3f})"
        )
    elif factor != 1.0:
        repack = f" x {factor} ({model.quantization} repack)"
    else:
        repack = ""
    out = [
        Step(
            "usable",
            _gib(est.usable_gib),
            f"{est.gpu_total_gib:.2f} GiB visible x {est.utilization} gpu_memory_utilization"
            if not est.kv_cache_fixed
            else "weights + activation + non-torch + graphs + the fixed KV cache",
            f"{WORKER} (requested_memory = total x utilization)",
        ),
        Step(
            "weights",
            _gib(est.weights_gib),
            (f"{sharded:.2f} GiB, this GPU's share (the lines below) of " if sharded else "")
            + f"{loaded.checkpoint_gb():.3f} GB checkpoint ({model.weights_source}"
            + (
                f", less the {model.checkpoint_gb() - loaded.checkpoint_gb():.3f} GB vision "
                "tower vLLM does not build when every modality it serves has a limit of 0"
                if est.tower_skipped
                else ""
            )
            + ") x 1e9 / 2^30"
            + repack
            + (f" / TP {tp}" if tp > 1 else "")
            + (f" = {full:.2f} GiB" if sharded else "")
            + (" (MoE: every expert is loaded)" if model.is_moe and not sharded else "")
            + (
                f" + {est.rope_cache_gib:.2f} GiB rotary cos/sin cache, whole on every GPU"
                if est.rope_cache_gib >= 0.005
                else ""
            ),
            'vllm/model_executor/model_loader ("Model loading took X GiB")'
            + (
                "; vllm/model_executor/layers/rotary_embedding/base.py (cos_sin_cache)"
                if est.rope_cache_gib >= 0.005
                else ""
            )
            + (
                "; vllm/model_executor/models/interfaces.py _mark_tower_model"
                if est.tower_skipped
                else ""
            )
            + (
                "; vllm/model_executor/layers/quantization/mxfp4.py get_mxfp4_backend "
                "(v0.19: fused_moe/oracle/mxfp4.py select_mxfp4_moe_backend)"
                if est.mxfp4_backend
                else ""
            ),
        ),
    ]
    out += parallel_steps(engine, est)
    # the lines below are the bottleneck stage's: its own layers of each of the model's KV
    # cache groups, a block spanning min(group size, its layers) of them (memory.py _stage_core)
    stage_layers = model.layers
    samples = True
    own_blocks = est.gpu_blocks
    if est.stages:
        own = next(st for st in est.stages if st["bottleneck"])
        first, end = own["layers"]
        stage_layers = end - first
        samples = bool(own["lm_head"])
        own_blocks = int(own["gpu_blocks"])
    span = min(layout.group_size, stage_layers)
    out.extend(_encoder_steps(est))
    if est.engine == "v1" and not samples:
        out.append(_forward_step(model, est, tp))
    elif est.engine == "v1":
        requests = min(est.max_num_seqs, est.max_num_batched_tokens)
        copies = sampler_copies(
            engine.version.parts, requests, flashinfer=engine.flashinfer_sampler
        )
        sampler = (
            "FlashInfer top-k/top-p kernel"
            if engine.flashinfer_sampler
            else "Triton top-k/top-p kernel (v0.17+, 8 rows or more)"
            if copies == SAMPLER_COPIES_V1_TRITON
            else "PyTorch top-k/top-p, a full sort"
        )
        mlp = (
            f"top-{model.experts_per_token} x {model.moe_intermediate} expert width"
            if model.is_moe
            else f"{model.intermediate} intermediate"
        )
        out.append(
            Step(
                "activation peak",
                _gib(est.activation_gib),
                f"max(forward of {est.max_num_batched_tokens} tokens ({mlp}), "
                f"{copies} x min({est.max_num_seqs} seqs, tokens) x {model.vocab} "
                f"vocab x 4 B, {sampler})",
                f"{RUNNER} profile_run, _dummy_run and _dummy_sampler_run; "
                "vllm/v1/sample/ops/topk_topp_sampler.py",
            )
        )
    else:
        out.append(
            Step(
                "activation peak",
                _gib(est.activation_gib),
                f"forward of {est.max_num_batched_tokens} tokens + last-token sampling"
                + (
                    f"; TP rank 0 alone gathers the logits and sorts them: at least "
                    f"{SAMPLER_COPIES_V0_RANK0} x min({est.max_num_seqs} seqs, tokens) x "
                    f"{model.vocab} vocab x 4 B, and rank 0 sizes the cache"
                    if tp > 1
                    else ""
                ),
                "vllm/worker/worker.py determine_num_available_blocks (V0 engine)"
                + (
                    "; vllm/model_executor/layers/logits_processor.py (gather to rank 0); "
                    "vllm/executor/executor_base.py (min over workers)"
                    if tp > 1
                    else ""
                ),
            )
        )
    if est.mm_encoder is not None:
        at = next(i for i, step in enumerate(out) if step.name == "activation peak")
        out[at] = replace(
            out[at], arithmetic=f"max(encoder pass, encoder outputs + {out[at].arithmetic})"
        )
    out.append(
        Step(
            "non-torch",
            _gib(est.non_torch_gib),
            _non_torch_arithmetic(engine, est),
            "vllm/utils memory_profiling (non_torch_increase)",
        )
    )
    if est.held is not None:
        held = est.held
        effect = {
            "charged": "counted as this instance's own non-torch memory (included above): "
            "the KV cache shrinks by it",
            "refused": f"vLLM refuses to start when free < {held.utilization} x total "
            f"({'refused' if held.refused else 'fits'})",
            "oom": f"sized on its own; the KV cache must fit in what is free "
            f"({'does not fit' if held.refused else 'fits'})",
        }[held.rule]
        out.append(
            Step(
                "held by others",
                _gib(held.held_gib),
                f"memory other processes hold at start, {effect}",
                f"{WORKER}"
                + (" (device-wide total - free, v0.9.0)" if held.rule == "charged" else "")
                + ("; init_device (v0.9.1+)" if held.rule == "refused" else ""),
            )
        )
    graphs_note = (
        "subtracted before sizing the KV cache"
        if est.cudagraph_in_budget
        else "eager mode: no graphs"
        if engine.enforce_eager
        else "captured after sizing, outside the budget (this release, this env)"
    )
    out.append(
        Step(
            "CUDA graphs",
            _gib(est.cudagraph_gib if est.cudagraph_in_budget else 0.0),
            f"~{est.cudagraph_gib:.2f} GiB estimated; {graphs_note}",
            f"{RUNNER} profile_cudagraph_memory; VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS "
            "(vllm/envs.py), default on from v0.20",
        )
    )
    if est.lora_gib:
        out.append(
            Step(
                "LoRA slots",
                _gib(est.lora_gib),
                f"{engine.max_loras} slots x rank {engine.max_lora_rank} on q,k,v,o,gate,up,down",
                "vllm/lora/models.py (preallocated LoRA weights)",
            )
        )
    out.append(
        Step(
            "KV cache",
            _gib(est.kv_cache_gib),
            "--kv-cache-memory-bytes, taken as given"
            if est.kv_cache_fixed
            else "usable - weights - activation - non-torch - graphs - LoRA",
            f'{WORKER} ("Available KV cache memory")',
        )
    )
    out.append(
        Step(
            "KV bytes per token",
            str(est.kv_bytes_per_token),
            _kv_token_formula(replace(model, layers=stage_layers), engine),
            f"{KV_SPEC} AttentionSpec.page_size_bytes / block_size",
        )
    )
    block_bytes = est.kv_bytes_per_token / stage_layers * BLOCK_SIZE * span
    on_stage = (
        f"; this stage holds its own {stage_layers} layers of each, a block spanning "
        f"min({layout.group_size}, {stage_layers}) = {span} layers"
        if est.stages
        else ""
    )
    out.append(
        Step(
            "KV cache groups",
            str(layout.groups),
            (
                f"{layout.full_groups} full-attention + {layout.sliding_groups} sliding-window "
                f"groups of {layout.group_size} layers (window {layout.window})"
                if layout.sliding_groups
                else f"one group of all {model.layers} layers"
                + (
                    " (no hybrid KV cache manager: sliding layers held as full attention)"
                    if model.is_hybrid and not engine.hybrid_kv_enabled
                    else ""
                )
            )
            + on_stage,
            f"{KV_UTILS} _get_kv_cache_groups_uniform_page_size"
            + ("; _project_kv_cache_groups_to_worker" if est.stages else ""),
        )
    )
    out.append(
        Step(
            "blocks",
            str(own_blocks),
            f"floor({est.kv_cache_gib:.2f} GiB / {block_bytes / 2**20:.3f} MiB per block of "
            f"{BLOCK_SIZE} tokens x {span} layers)"
            + (
                f"; the pipeline gives every stage the smallest count, {est.gpu_blocks}"
                if own_blocks != est.gpu_blocks
                else ""
            ),
            f"{KV_UTILS} get_kv_cache_config (num_blocks)",
        )
    )
    out.append(
        Step(
            "KV cache tokens",
            str(est.kv_cache_tokens),
            f"{est.gpu_blocks} blocks // {layout.groups} groups x {BLOCK_SIZE}",
            f'{KV_UTILS} ("GPU KV cache size: N tokens")',
        )
    )
    per_request = layout.blocks_per_request(est.max_model_len, est.max_num_batched_tokens)
    out.append(
        Step(
            "max concurrency",
            f"{est.max_concurrency:.2f}x",
            f"{est.gpu_blocks} blocks / {per_request} blocks per request of "
            f"{est.max_model_len} tokens"
            + (
                f" (sliding groups hold min(window {layout.window} - 1 + "
                f"{est.max_num_batched_tokens}, length) + 1 block)"
                if layout.sliding_groups
                else ""
            ),
            f"{KV_UTILS} get_max_concurrency_for_kv_cache_config; {KV_SPEC} max_memory_usage_bytes",
        )
    )
    out.append(
        Step(
            "verdict",
            "starts" if est.starts else "fails",
            ("" if est.starts else f"{est.failure}: ")
            + f"one request of {est.max_model_len} tokens needs {est.kv_needed_gib:.2f} GiB of "
            f"KV cache; {max(0.0, est.kv_cache_gib):.2f} GiB available"
            + (" (length chosen by --max-model-len -1)" if est.auto_max_model_len else ""),
            f"{KV_UTILS} check_enough_kv_cache_memory",
        )
    )
    return out


def _non_torch_arithmetic(engine: Engine, est: MemoryEstimate) -> str:
    """Which of the figures measured on public start-up logs applies to this release and layout."""
    what = "CUDA context, cuBLAS and NCCL buffers, as vLLM's logs print them"
    if est.engine != "v1":
        return f"{what} (V0)"
    parts = engine.version.parts
    single = NON_TORCH_V1_GIB_FROM_018 if parts >= NON_TORCH_V1_RAISED else NON_TORCH_V1_GIB
    text = f"{what}: {single:.2f} GiB on one GPU"
    if parts < NON_TORCH_V1_RAISED:
        text += f" ({NON_TORCH_V1_GIB_FROM_018} from v0.18)"
    if est.allreduce_fusion:
        return (
            f"{text}; with TP > 1 from v0.19 {NON_TORCH_TP_V1_GIB_FROM_019} GiB per GPU where the "
            "FlashInfer all-reduce fusion is on (compute capability 9.0 or 10.x, no PP or DP: "
            "vllm/config/vllm.py enable_allreduce_rms_fusion)"
        )
    fusion_off = (
        " (the FlashInfer all-reduce fusion's figure does not apply: it is on only for compute "
        "capability 9.0 or 10.x without PP or DP, vllm/config/vllm.py enable_allreduce_rms_fusion)"
        if engine.tensor_parallel_size > 1 and parts >= NON_TORCH_TP_RAISED
        else ""
    )
    if est.non_torch_gib > single + 1e-9:
        return (
            f"{text} + {NON_TORCH_TP_EXTRA_GIB} GiB for the GPUs it exchanges activations with"
            + fusion_off
        )
    return text


def _forward_step(model: ModelSpec, est: MemoryEstimate, tp: int) -> Step:
    """A pipeline stage before the last runs no sampler: its peak is the forward pass alone."""
    if model.is_moe:
        mlp = model.experts_per_token * model.moe_intermediate + model.shared_intermediate
        width = f"top-{model.experts_per_token} x {model.moe_intermediate} expert width"
        if model.shared_intermediate:
            width += f" + {model.shared_intermediate} shared"
    else:
        mlp = model.intermediate
        width = f"{model.intermediate} intermediate"
    tokens = est.max_num_batched_tokens
    if est.mm_encoder and est.mm_encoder.forward_tokens:
        tokens = max(tokens, est.mm_encoder.forward_tokens)
    forward = FWD_TOKEN_FACTOR * tokens * 2 * (3 * mlp / tp + 2 * model.hidden) / GIB
    return Step(
        "activation peak",
        _gib(est.activation_gib),
        f"forward of {tokens} tokens x 2 B x (3 x {mlp} ({width})"
        + (f" / TP {tp}" if tp > 1 else "")
        + f" + 2 x {model.hidden} hidden) = {forward:.2f} GiB; no sampler pass: only the last "
        "pipeline stage computes logits and samples",
        f"{RUNNER} profile_run (the sampler only `if get_pp_group().is_last_rank`)",
    )


def _encoder_steps(est: MemoryEstimate) -> list[Step]:
    """The vision tower's part of the profile run, when the model has one."""
    mm = est.mm_encoder
    if mm is None:
        return []
    images = f"{mm.items} image{'s' if mm.items != 1 else ''} of {mm.tokens_per_item} tokens"
    if est.engine == "v1":
        batch = f"{images} (encoder budget {mm.budget} = max(batched tokens, one image))"
        source = (
            f"{RUNNER} profile_run; vllm/v1/core/encoder_cache_manager.py "
            "compute_mm_encoder_budget; vllm/v1/worker/utils.py MultiModalBudget"
        )
        held = "held in the encoder cache through the text pass and the sampler"
        held_source = f"{RUNNER} profile_run (encoder_cache cleared after the sampler run)"
    else:
        batch = f"{images}, {mm.profile_seqs} dummy requests of {mm.forward_tokens} tokens in all"
        source = "vllm/worker/model_runner.py profile_run (max_num_seqs cut to the images)"
        held = "merged into the text inputs of the same forward pass"
        held_source = source
    return [
        Step(
            "encoder pass",
            _gib(mm.encoder_gib),
            f"{batch}: {mm.patches} patches through the vision tower",
            source,
        ),
        Step("encoder outputs", _gib(mm.cache_gib), held, held_source),
    ]


def render(engine: Engine, est: MemoryEstimate) -> list[str]:
    rows = steps(engine, est)
    width = max(len(r.name) for r in rows)
    lines = ["how vLLM sizes this (vllm-project/vllm):"]
    for row in rows:
        lines.append(f"  {row.name:<{width}}  {row.value:>12}  = {row.arithmetic}")
        lines.append(f"  {'':<{width}}  {'':>12}    [{row.source}]")
    return lines
