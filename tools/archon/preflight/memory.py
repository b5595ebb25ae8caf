"""The memory model: vLLM's start-up accounting, per GPU, from settings alone.

One module serves `archon preflight`, `archon lint` and `archon bench preflight`. It follows what
vLLM does at start-up (vllm/v1/worker/gpu_worker.py determine_available_memory; V0:
vllm/worker/worker.py determine_num_available_blocks):

    usable    = visible total x gpu_memory_utilization
    kv_cache  = usable - weights - activation peak - non-torch - CUDA graphs* - LoRA slots
    blocks    = kv_cache // (16 tokens x KV bytes per token);  tokens = blocks x 16

(*graphs from v0.20, or v0.18 with VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1, and never with
enforce_eager). Sliding-window layers get blocks for their window only (the hybrid KV cache
manager, vllm/v1/core/kv_cache_utils.py). The constants below are calibrated on the
public start-up logs in benchmarks/vllm-startups.jsonl (each case names its source);
docs/preflight.md gives the derivation, the accuracy reached and the known gaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from archon.preflight.catalog import GB, ModelSpec
from archon.preflight.versions import HYBRID_KV_CACHE, VllmVersion

GIB = 1024**3
BLOCK_SIZE = 16  # vLLM's default KV block size on CUDA and ROCm (CacheConfig.block_size)

# ---- calibrated constants (docs/preflight.md, "Calibration") ---------------------------------
# Non-torch memory (CUDA context is outside torch's view; cuBLAS/NCCL workspaces are not):
# V1 logs print 0.13-0.14 GiB on one GPU and 0.54 GiB at TP=2 (llm-d empirical results);
# V0 logs print 0.30-0.35 GiB.
NON_TORCH_V1_GIB = 0.15
NON_TORCH_V0_GIB = 0.33
NON_TORCH_TP_EXTRA_GIB = 0.40  # NCCL buffers and custom all-reduce when TP > 1
# V1's profile run ends with a dummy sampler pass over min(max_num_seqs, batched tokens) requests
# (vllm/v1/worker/gpu_model_runner.py _dummy_sampler_run). Its peak is about 9.7 float32 copies
# of [requests x vocab]: 4.76/5.56/5.64/7.38 GiB printed for Llama-8B/Qwen3-0.6B/Qwen3-32B/
# gpt-oss-20b at 1024 requests. The forward pass and the sampler run one after the other, so the
# activation peak is the larger of the two.
SAMPLER_COPIES_V1 = 9.7
# That figure is the PyTorch-native top-k/top-p path, which sorts the whole [requests x vocab]
# tensor (vllm/v1/sample/ops/topk_topp_sampler.py forward_native). FlashInfer's sampling kernel
# (forward_cuda, "Using FlashInfer for top-p & top-k sampling" in the log) sorts nothing: Qwen2-7B
# at 256 requests on A100 (v0.10.1.1) left 0.55-0.70 GiB between weights and KV cache at two
# utilizations, 2.8-3.8 copies with the non-torch share taken out, where the same setup on a
# worker without FlashInfer left the full native figure. vLLM turned the kernel off by default in
# v0.11.1 (PR #26859), so it counts only when VLLM_USE_FLASHINFER_SAMPLER=1 asks for it.
SAMPLER_COPIES_FLASHINFER = 3.0
# V0 samples only the last token of each profiled sequence: a couple of float32 copies.
SAMPLER_COPIES_V0 = 1.5
# Forward-pass peak per token: the MLP's gate_up output (2 x intermediate) and activation output
# (intermediate) are alive together with the residual and hidden state (2 x hidden), 16-bit each.
FWD_TOKEN_FACTOR = 1.0
# CUDA graphs: typically 0.3-1 GiB for 7-14B models (the public start-up logs; estimated by
# profile_cudagraph_memory in vllm/v1/worker/gpu_model_runner.py); vLLM
# printed 0.35 GiB for Qwen2.5-7B (28 layers) at v0.22. Scales with depth and width.
GRAPH_BASE_GIB = 0.10
GRAPH_PER_LAYER_GIB = 0.009
# Weights as loaded = checkpoint GB / 1.0737 (GB -> GiB) times a per-format factor: MXFP4
# experts are re-laid out for the MoE kernels (gpt-oss loads ~5% above its checkpoint size).
# AWQ checkpoints repacked for the Marlin kernels load ~2% above their size (Qwen2.5-7B-AWQ
# printed 5.29 GiB for a 5.20 GiB checkpoint, Qwen2.5-Coder-3B-AWQ 1.95 for 1.93).
LOAD_FACTOR = {"mxfp4": 1.05, "awq": 1.02}
# On GPUs below compute capability 9 (Ampere, Ada) vLLM runs MXFP4 experts through the Marlin
# MoE kernel, which needs n % 256 == 0 and k % 128 == 0: the per-rank expert intermediate size
# is padded to a multiple of 128 and the hidden size to one of 256
# (vllm/model_executor/layers/quantization/mxfp4.py get_mxfp4_backend and create_weights). The
# padded tensors replace the repack factor above: gpt-oss-120b at TP=4 on A100 loads 17.22 GiB
# per GPU (720 -> 768, 2880 -> 3072), gpt-oss-20b on one A100 13.72 GiB.
MXFP4_BYTES_PER_PARAM = 4.25 / 8  # 4-bit values and one e8m0 scale per 32
MARLIN_MXFP4_INTERMEDIATE_ALIGN = 128
MARLIN_MXFP4_HIDDEN_ALIGN = 256
# vLLM needs a little memory beyond the weights to load them at all (CUDA context, buffers).
LOAD_HEADROOM_GIB = 0.5

# Defaults of the OpenAI server when the setting is not given
# (vllm/engine/arg_utils.py EngineArgs.get_batch_defaults / _set_default_args_v1).
DEFAULT_UTILIZATION = 0.9
DEFAULT_MAX_NUM_SEQS = 256
V1_BATCHED_TOKENS = 2048
V1_LARGE_GPU_BATCHED_TOKENS = 8192  # >= 70 GiB and not an A100 (PR #17885)
V1_LARGE_GPU_MAX_NUM_SEQS = 1024
V0_MIN_BATCHED_TOKENS = 2048  # V0 without chunked prefill: max(max_model_len, 2048)
V0_CHUNKED_BATCHED_TOKENS = 512  # V0 chunked prefill, on by default above 32K context
V0_CHUNKED_ABOVE = 32768


def kv_dtype_bytes(kv_cache_dtype: str | None) -> int:
    text = (kv_cache_dtype or "auto").lower()
    if text.startswith("fp8") or text in ("int8", "float8"):
        return 1
    if text in ("float32", "float", "fp32"):
        return 4
    # "auto", bfloat16, float16: 2 bytes (vLLM serves float32 checkpoints in 16 bit, so "auto"
    # never means 4)
    return 2


@dataclass(frozen=True)
class Engine:
    """One vLLM instance's settings, as vLLM sees them (None = vLLM's default)."""

    model: ModelSpec
    version: VllmVersion
    gpu_memory_utilization: float = DEFAULT_UTILIZATION
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    kv_cache_dtype: str = "auto"
    tensor_parallel_size: int = 1
    max_loras: int = 0  # 0 = LoRA off
    max_lora_rank: int = 16
    name: str = "main"
    auto_max_model_len: bool = False  # --max-model-len -1 (v0.14+)
    kv_cache_memory_bytes: int | None = None  # --kv-cache-memory-bytes (v0.10.2+)
    estimate_cudagraphs: bool | None = None  # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS
    pooling: bool = False  # --runner pooling: an embedding model, no sampler
    flashinfer_sampler: bool = False  # VLLM_USE_FLASHINFER_SAMPLER=1: FlashInfer top-k/top-p
    hybrid_kv_cache: bool | None = None  # False: --disable-hybrid-kv-cache-manager

    @property
    def model_len(self) -> int:
        return self.max_model_len or self.model.max_positions

    @property
    def hybrid_kv_enabled(self) -> bool:
        """Whether sliding-window layers of a mixed model get blocks for their window only.

        Before the hybrid KV cache manager (v1, v0.9.2 here) vLLM turned the sliding layers of a
        model that mixes them with full attention into full-attention layers
        (vllm/v1/core/kv_cache_utils.py unify_hybrid_kv_cache_specs); the V0 engine never
        dropped blocks outside the window; --disable-hybrid-kv-cache-manager restores that.
        """
        if self.version.engine != "v1" or not self.version.at_least(HYBRID_KV_CACHE):
            return False
        return self.hybrid_kv_cache is not False

    @property
    def graphs_in_budget(self) -> bool:
        return (
            self.version.engine == "v1"
            and not self.enforce_eager
            and self.version.graphs_in_budget(self.estimate_cudagraphs)
        )


@dataclass(frozen=True)
class GpuBudget:
    """What vLLM sees of the card: the figures the memory model needs."""

    name: str
    visible_gib: float
    bandwidth_gbs: float | None = None
    desktop_gib: float = 0.0
    arch: str = ""  # sm_89, gfx1100... ("" = unknown)

    @property
    def mxfp4_marlin(self) -> bool:
        """vLLM's MXFP4 MoE backend on this card is Marlin (CUDA compute capability < 9)."""
        return self.arch.startswith("sm_") and int(self.arch[3:-1] or 0) < 9

    @property
    def large(self) -> bool:
        # vLLM raises its batch defaults on >= 70 GiB cards except A100s
        return self.visible_gib >= 70 and "a100" not in self.name.lower()


@dataclass
class MemoryEstimate:
    gpu: str
    gpu_total_gib: float
    engine: str
    utilization: float
    usable_gib: float
    weights_gib: float
    activation_gib: float
    non_torch_gib: float
    cudagraph_gib: float
    cudagraph_in_budget: bool
    lora_gib: float
    kv_cache_gib: float
    kv_bytes_per_token: int
    kv_cache_tokens: int
    gpu_blocks: int
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    max_concurrency: float
    failure: str | None  # None, "oom_weights", "no_cache_memory", "kv_too_small"
    max_model_len_fit: int = 0
    kv_needed_gib: float = 0.0  # KV memory one request of max_model_len needs
    kv_groups: int = 1  # KV cache groups (hybrid models: one per attention type and layer slice)
    sliding_layers: int = 0
    sliding_window: int = 0
    auto_max_model_len: bool = False
    kv_cache_fixed: bool = False
    min_utilization: float | None = None
    decode_tokens_per_s: float | None = None
    mxfp4_marlin: bool = False  # MXFP4 experts padded for the Marlin MoE kernel
    notes: list[str] = field(default_factory=list)

    @property
    def starts(self) -> bool:
        return self.failure is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "gpu": self.gpu,
            "gpu_total_gib": round(self.gpu_total_gib, 2),
            "engine": self.engine,
            "gpu_memory_utilization": self.utilization,
            "usable_gib": round(self.usable_gib, 2),
            "weights_gib": round(self.weights_gib, 2),
            "activation_gib": round(self.activation_gib, 2),
            "non_torch_gib": round(self.non_torch_gib, 2),
            "cudagraph_gib": round(self.cudagraph_gib, 2),
            "cudagraph_in_budget": self.cudagraph_in_budget,
            "lora_gib": round(self.lora_gib, 3),
            "kv_cache_gib": round(self.kv_cache_gib, 2),
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "kv_cache_tokens": self.kv_cache_tokens,
            "gpu_blocks": self.gpu_blocks,
            "max_model_len": self.max_model_len,
            "max_num_seqs": self.max_num_seqs,
            "max_num_batched_tokens": self.max_num_batched_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
            "max_model_len_fit": self.max_model_len_fit,
            "kv_needed_gib": round(self.kv_needed_gib, 3),
            "kv_cache_groups": self.kv_groups,
            "sliding_window": self.sliding_window or None,
            "sliding_window_layers": self.sliding_layers,
            "max_model_len_auto": self.auto_max_model_len,
            "kv_cache_memory_fixed": self.kv_cache_fixed,
            "min_gpu_memory_utilization": self.min_utilization,
            "decode_tokens_per_s_max": (
                round(self.decode_tokens_per_s, 1) if self.decode_tokens_per_s else None
            ),
            "failure": self.failure,
        }


# ---- the pieces -------------------------------------------------------------------------------


def kv_bytes_per_token(model: ModelSpec, kv_cache_dtype: str = "auto", tp: int = 1) -> int:
    """Per GPU: 2 (K and V) x layers x KV heads on this GPU x head_dim x dtype bytes.

    KV heads split across tensor-parallel ranks and are replicated when there are fewer heads than
    ranks (vLLM's ModelConfig.get_num_kv_heads). MLA models (DeepSeek V2/V3/R1) cache one latent
    of kv_lora_rank + rope dims per layer, the same on every rank (vllm/attention MLA backends).
    """
    size = kv_dtype_bytes(kv_cache_dtype)
    if model.is_mla:
        return model.layers * (model.kv_lora_rank + model.qk_rope_head_dim) * size
    heads_per_gpu = max(1, math.ceil(model.kv_heads / max(1, tp)))
    return 2 * model.layers * heads_per_gpu * model.head_dim * size


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def mxfp4_marlin_padding(model: ModelSpec, tp: int = 1) -> float:
    """How much larger the Marlin MoE kernel's padded expert tensors are than the checkpoint's."""
    part = max(1, model.moe_intermediate // max(1, tp))
    inter = _round_up(part, MARLIN_MXFP4_INTERMEDIATE_ALIGN) / part
    hidden = _round_up(model.hidden, MARLIN_MXFP4_HIDDEN_ALIGN) / model.hidden
    return inter * hidden


def weights_gib(model: ModelSpec, tp: int = 1, *, mxfp4_marlin: bool = False) -> float:
    """Loaded size per GPU: checkpoint GB (the Hub's safetensors total_size) / 1.0737, / TP."""
    tp = max(1, tp)
    if model.quantization == "mxfp4" and model.is_moe and mxfp4_marlin:
        experts = model.layers - model.dense_layers
        expert_params = experts * model.experts * 3 * model.hidden * model.moe_intermediate
        expert_gb = min(model.checkpoint_gb(), expert_params * MXFP4_BYTES_PER_PARAM / GB)
        rest_gb = model.checkpoint_gb() - expert_gb
        padded = expert_gb * mxfp4_marlin_padding(model, tp)
        return (padded + rest_gb) * GB / GIB / tp
    factor = LOAD_FACTOR.get(model.quantization, 1.0)
    return model.checkpoint_gb() * GB / GIB * factor / tp


def batch_defaults(engine: Engine, gpu: GpuBudget) -> tuple[int, int, bool]:
    """(max_num_batched_tokens, max_num_seqs, chunked prefill) as vLLM would pick them."""
    version = engine.version
    if version.engine == "v1":
        large = gpu.large
        seqs = engine.max_num_seqs or (V1_LARGE_GPU_MAX_NUM_SEQS if large else DEFAULT_MAX_NUM_SEQS)
        tokens = engine.max_num_batched_tokens or (
            V1_LARGE_GPU_BATCHED_TOKENS if large else V1_BATCHED_TOKENS
        )
        return tokens, seqs, True
    seqs = engine.max_num_seqs or DEFAULT_MAX_NUM_SEQS
    # V0 turns chunked prefill on by default for contexts above 32K (vllm/engine/arg_utils.py,
    # use_long_context); otherwise one batch must hold a whole max_model_len prompt.
    chunked = engine.model_len > V0_CHUNKED_ABOVE and version.at_least((0, 5, 1))
    if engine.max_num_batched_tokens:
        return engine.max_num_batched_tokens, seqs, chunked
    if chunked:
        return V0_CHUNKED_BATCHED_TOKENS, seqs, True
    return max(engine.model_len, V0_MIN_BATCHED_TOKENS), seqs, False


def activation_gib(
    model: ModelSpec,
    tokens: int,
    seqs: int,
    *,
    engine: str,
    tp: int = 1,
    chunked: bool = True,
    pooling: bool = False,
    flashinfer_sampler: bool = False,
) -> float:
    """Peak torch memory of the profile run above the weights.

    A pooling model's profile run ends with the pooler, not the sampler
    (vllm/v1/worker/gpu_model_runner.py profile_run: `_dummy_pooler_run` when
    `is_pooling_model`): no logits over the vocabulary, only the forward pass counts.
    """
    if model.is_moe:
        mlp = model.experts_per_token * model.moe_intermediate + model.shared_intermediate
    else:
        mlp = model.intermediate
    per_token = 2 * (3 * mlp / max(1, tp) + 2 * model.hidden)
    forward = FWD_TOKEN_FACTOR * tokens * per_token / GIB
    if pooling:
        return forward
    requests = min(seqs, tokens)
    logits = requests * model.vocab * 4 / GIB
    if engine == "v1":
        copies = SAMPLER_COPIES_FLASHINFER if flashinfer_sampler else SAMPLER_COPIES_V1
        return max(forward, copies * logits)
    return forward + (0.0 if chunked else SAMPLER_COPIES_V0 * logits)


def non_torch_gib(engine: str, tp: int = 1) -> float:
    base = NON_TORCH_V1_GIB if engine == "v1" else NON_TORCH_V0_GIB
    return base + (NON_TORCH_TP_EXTRA_GIB if tp > 1 and engine == "v1" else 0.0)


def cudagraph_gib(model: ModelSpec) -> float:
    return GRAPH_BASE_GIB + GRAPH_PER_LAYER_GIB * model.layers * math.sqrt(model.hidden / 4096)


def lora_gib(model: ModelSpec, max_loras: int, rank: int, tp: int = 1) -> float:
    """LoRA slots vLLM preallocates: A (rank x in) and B (out x rank) for every target module
    (q, k, v, o, gate, up, down) of every layer, max_loras times, 16-bit
    (vllm/lora/models.py: ~130 MiB per rank-16 slot on a 14B model)."""
    if max_loras <= 0:
        return 0.0
    h = model.hidden
    q = model.heads * model.head_dim
    kv = model.kv_heads * model.head_dim
    inter = model.intermediate if not model.is_moe else model.moe_intermediate
    in_out = (h + q + 2 * kv) + (q + h) + (h + 2 * inter) + (inter + h)
    return max_loras * rank * model.layers * in_out * 2 / max(1, tp) / GIB


def decode_ceiling(model: ModelSpec, gpu: GpuBudget, tp: int = 1) -> float | None:
    """Single-stream tokens/s upper bound: every decoded token reads the (active) weights once."""
    if not gpu.bandwidth_gbs:
        return None
    per_gpu = model.active_gb() * GB / max(1, tp)
    factor = LOAD_FACTOR.get(model.quantization, 1.0)
    return gpu.bandwidth_gbs * 1e9 / (per_gpu * factor)


@dataclass(frozen=True)
class KvLayout:
    """How vLLM lays the KV cache out: layers per group, full and sliding groups.

    A model with one attention type is one group of every layer. A hybrid model's layers are cut
    into groups of equal size, one attention type each, padded when a type's count is not a
    multiple (vllm/v1/core/kv_cache_utils.py _get_kv_cache_groups_uniform_page_size): the size
    is the smallest type's layer count, or the largest one's when it is below 1.5x the smallest.
    One block id spans `group_size` layers.
    """

    group_size: int
    full_groups: int
    sliding_groups: int
    window: int

    @property
    def groups(self) -> int:
        return self.full_groups + self.sliding_groups

    def blocks_per_request(self, model_len: int, batched_tokens: int) -> int:
        """Blocks one request of model_len tokens holds at its peak: full-attention groups the
        whole length; sliding groups min(window - 1 + batched tokens, length) + one block,
        because the window need not start on a block boundary (vllm/v1/kv_cache_interface.py
        SlidingWindowSpec.max_memory_usage_bytes)."""
        full = math.ceil(model_len / BLOCK_SIZE)
        if not self.sliding_groups:
            return self.full_groups * full
        tokens = min(self.window - 1 + batched_tokens, model_len)
        sliding = min(math.ceil(tokens / BLOCK_SIZE) + 1, full)
        return self.full_groups * full + self.sliding_groups * sliding


def kv_layout(model: ModelSpec, *, hybrid: bool = True) -> KvLayout:
    """Without the hybrid manager a model mixing sliding and full layers is all full attention."""
    sliding = min(model.sliding_layers, model.layers) if model.is_hybrid else 0
    if not hybrid and 0 < sliding < model.layers:
        sliding = 0
    full = model.layers - sliding
    counts = [n for n in (full, sliding) if n > 0]
    size = min(counts)
    if max(counts) < 1.5 * size:
        size = max(counts)
    return KvLayout(
        group_size=size,
        full_groups=math.ceil(full / size) if full else 0,
        sliding_groups=math.ceil(sliding / size) if sliding else 0,
        window=model.sliding_window if sliding else 0,
    )


# ---- the estimate --------------------------------------------------------------------------------


def _core(engine: Engine, gpu: GpuBudget) -> MemoryEstimate:
    model = engine.model
    tp = max(1, engine.tensor_parallel_size)
    gen = engine.version.engine
    tokens, seqs, chunked = batch_defaults(engine, gpu)
    usable = gpu.visible_gib * engine.gpu_memory_utilization
    weights = weights_gib(model, tp, mxfp4_marlin=gpu.mxfp4_marlin)
    act = activation_gib(
        model,
        tokens,
        seqs,
        engine=gen,
        tp=tp,
        chunked=chunked,
        pooling=engine.pooling,
        flashinfer_sampler=engine.flashinfer_sampler,
    )
    non_torch = non_torch_gib(gen, tp)
    graphs = 0.0 if engine.enforce_eager else cudagraph_gib(model)
    graphs_in = engine.graphs_in_budget
    lora = lora_gib(model, engine.max_loras, engine.max_lora_rank, tp)
    spent = weights + act + non_torch + (graphs if graphs_in else 0.0) + lora
    fixed = engine.kv_cache_memory_bytes is not None and gen == "v1"
    if fixed:
        # --kv-cache-memory-bytes: vLLM takes the size as given and skips the utilization
        # arithmetic (vllm/v1/worker/gpu_worker.py determine_available_memory)
        kv = (engine.kv_cache_memory_bytes or 0) / GIB
        usable = spent + kv
    else:
        kv = usable - spent
    per_token = kv_bytes_per_token(model, engine.kv_cache_dtype, tp)
    layout = kv_layout(model, hybrid=engine.hybrid_kv_enabled)
    per_layer_block = per_token / model.layers * BLOCK_SIZE
    block_bytes = per_layer_block * layout.group_size
    blocks = max(0, int(kv * GIB // block_bytes)) if kv > 0 else 0
    # "GPU KV cache size: N tokens": blocks per group x block size (vllm/v1/core/kv_cache_utils.py)
    kv_tokens = blocks // layout.groups * BLOCK_SIZE
    model_len = engine.model_len
    per_request = layout.blocks_per_request(model_len, tokens)
    concurrency = blocks / per_request if per_request else 0.0
    if weights + LOAD_HEADROOM_GIB > gpu.visible_gib:
        failure: str | None = "oom_weights"
    elif fixed and usable > gpu.visible_gib:
        failure = "oom_kv_fixed"
    elif blocks <= 0:
        failure = "no_cache_memory"
    elif blocks < per_request:
        failure = "kv_too_small"
    else:
        failure = None
    return MemoryEstimate(
        gpu=gpu.name,
        gpu_total_gib=gpu.visible_gib,
        engine=gen,
        utilization=engine.gpu_memory_utilization,
        usable_gib=usable,
        weights_gib=weights,
        activation_gib=act,
        non_torch_gib=non_torch,
        cudagraph_gib=graphs,
        cudagraph_in_budget=graphs_in,
        lora_gib=lora,
        kv_cache_gib=kv,
        kv_bytes_per_token=per_token,
        kv_cache_tokens=kv_tokens,
        gpu_blocks=blocks,
        max_model_len=model_len,
        max_num_seqs=seqs,
        max_num_batched_tokens=tokens,
        max_concurrency=concurrency,
        failure=failure,
        kv_needed_gib=per_request * block_bytes / GIB,
        kv_groups=layout.groups,
        sliding_layers=model.sliding_layers if layout.sliding_groups else 0,
        sliding_window=layout.window,
        kv_cache_fixed=fixed,
        mxfp4_marlin=gpu.mxfp4_marlin and model.quantization == "mxfp4" and model.is_moe,
    )


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """Largest value in [lo, hi] with ok(value), assuming ok is monotone decreasing; 0 if none."""
    if not ok(lo):
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def estimate(engine: Engine, gpu: GpuBudget) -> MemoryEstimate:
    """The full estimate: figures, verdict, largest max_model_len that fits, lowest utilization.

    With --max-model-len -1 vLLM itself picks the largest length that fits, up to the model's
    max_position_embeddings (vllm/v1/core/kv_cache_utils.py); the estimate does the same.
    """
    limit = engine.model.max_positions

    def fits_len(length: int) -> bool:
        return _core(replace(engine, max_model_len=length, auto_max_model_len=False), gpu).starts

    fit = _largest(BLOCK_SIZE, max(limit, BLOCK_SIZE), fits_len)
    if engine.auto_max_model_len:
        engine = replace(engine, max_model_len=fit or limit, auto_max_model_len=False)
        result = _core(engine, gpu)
        result.auto_max_model_len = True
    else:
        result = _core(engine, gpu)
    result.max_model_len_fit = fit

    def fits_util(hundredths: int) -> bool:
        # monotone decreasing in "how much we give up": test 100 - hundredths
        util = (100 - hundredths) / 100
        return _core(replace(engine, gpu_memory_utilization=util), gpu).starts

    if fits_util(0):
        given_up = _largest(0, 99, fits_util)
        result.min_utilization = round((100 - given_up) / 100, 2)
    result.decode_tokens_per_s = decode_ceiling(engine.model, gpu, engine.tensor_parallel_size)
    return result


def estimate_gpu(gpu: GpuBudget, engines: Sequence[Engine]) -> tuple[list[MemoryEstimate], float]:
    """Several vLLM instances (archetypes, extra LoRA servers...) sharing one GPU.

    Each instance sizes its own KV cache inside its own utilization share, and each refuses to
    start when free memory is below its utilization x total (vllm/v1/worker/gpu_worker.py
    init_device), so the shares plus the desktop session must fit in the card. Returns the
    per-engine estimates and the memory left over (GiB; negative = the last engine cannot start).
    """
    results = [estimate(engine, gpu) for engine in engines]
    claimed = sum(engine.gpu_memory_utilization for engine in engines) * gpu.visible_gib
    return results, gpu.visible_gib - gpu.desktop_gib - claimed
