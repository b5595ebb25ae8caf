"""`archon preflight --explain`: the arithmetic line by line, each line naming the vLLM code it
follows (paths in the vllm-project/vllm repository)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from archon.preflight.catalog import ModelSpec
from archon.preflight.memory import (
    BLOCK_SIZE,
    LOAD_FACTOR,
    SAMPLER_COPIES_FLASHINFER,
    SAMPLER_COPIES_V1,
    Engine,
    MemoryEstimate,
    kv_dtype_bytes,
    kv_layout,
    mxfp4_marlin_padding,
)

WORKER = "vllm/v1/worker/gpu_worker.py determine_available_memory"
RUNNER = "vllm/v1/worker/gpu_model_runner.py"
KV_UTILS = "vllm/v1/core/kv_cache_utils.py"
KV_SPEC = "vllm/v1/kv_cache_interface.py"


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


def steps(engine: Engine, est: MemoryEstimate) -> list[Step]:
    model = engine.model
    tp = max(1, engine.tensor_parallel_size)
    factor = LOAD_FACTOR.get(model.quantization, 1.0)
    layout = kv_layout(model, hybrid=engine.hybrid_kv_enabled)
    if est.mxfp4_marlin:
        repack = (
            f" with the MXFP4 experts padded x{mxfp4_marlin_padding(model, tp):.3f} for the "
            "Marlin MoE kernel (per-rank intermediate to a multiple of 128, hidden to 256)"
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
            f"{model.checkpoint_gb():.3f} GB checkpoint ({model.weights_source}) x 1e9 / 2^30"
            + repack
            + (f" / TP {tp}" if tp > 1 else "")
            + (" (MoE: every expert is loaded)" if model.is_moe else ""),
            'vllm/model_executor/model_loader ("Model loading took X GiB")'
            + ("; vllm/model_executor/layers/quantization/mxfp4.py" if est.mxfp4_marlin else ""),
        ),
    ]
    if est.engine == "v1":
        copies = SAMPLER_COPIES_FLASHINFER if engine.flashinfer_sampler else SAMPLER_COPIES_V1
        sampler = (
            "FlashInfer top-k/top-p kernel"
            if engine.flashinfer_sampler
            else "PyTorch-native top-k/top-p, a full sort"
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
                f"forward of {est.max_num_batched_tokens} tokens + last-token sampling",
                "vllm/worker/worker.py determine_num_available_blocks (V0 engine)",
            )
        )
    out.append(
        Step(
            "non-torch",
            _gib(est.non_torch_gib),
            "CUDA context, cuBLAS and NCCL buffers (calibrated on public start-up logs)",
            "vllm/utils memory_profiling (non_torch_increase)",
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
            _kv_token_formula(model, engine),
            f"{KV_SPEC} AttentionSpec.page_size_bytes / block_size",
        )
    )
    block_bytes = est.kv_bytes_per_token / model.layers * BLOCK_SIZE * layout.group_size
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
            ),
            f"{KV_UTILS} _get_kv_cache_groups_uniform_page_size",
        )
    )
    out.append(
        Step(
            "blocks",
            str(est.gpu_blocks),
            f"floor({est.kv_cache_gib:.2f} GiB / {block_bytes / 2**20:.3f} MiB per block of "
            f"{BLOCK_SIZE} tokens x {layout.group_size} layers)",
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


def render(engine: Engine, est: MemoryEstimate) -> list[str]:
    rows = steps(engine, est)
    width = max(len(r.name) for r in rows)
    lines = ["how vLLM sizes this (vllm-project/vllm):"]
    for row in rows:
        lines.append(f"  {row.name:<{width}}  {row.value:>12}  = {row.arithmetic}")
        lines.append(f"  {'':<{width}}  {'':>12}    [{row.source}]")
    return lines
