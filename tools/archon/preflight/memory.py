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
from archon.preflight.multimodal import (
    EncoderPass,
    MmSettings,
    encoder_pass,
    tower_skipped,
    without_tower,
)
from archon.preflight.parallel import (
    PP_UNIFIED_KV_CHECK,
    PartitionError,
    Stage,
    expert_parallel_size,
    gpu_share,
    local_experts,
    moe_ranks,
)
from archon.preflight.parallel import stages as pp_stages
from archon.preflight.profiles import GpuProfile, compute_capability
from archon.preflight.versions import HYBRID_KV_CACHE, NEWEST_KNOWN, VllmVersion

GIB = 1024**3
BLOCK_SIZE = 16  # vLLM's default KV block size on CUDA and ROCm (CacheConfig.block_size)

# ---- calibrated constants (docs/preflight.md, "Calibration") ---------------------------------
# Non-torch memory (CUDA context is outside torch's view; cuBLAS/NCCL workspaces are not):
# V1 logs print 0.13-0.14 GiB on one GPU and 0.54 GiB at TP=2 (llm-d empirical results);
# V0 logs print 0.30-0.35 GiB.
NON_TORCH_V1_GIB = 0.15
NON_TORCH_V0_GIB = 0.33
NON_TORCH_TP_EXTRA_GIB = 0.40  # NCCL buffers and custom all-reduce when TP > 1
# From v0.18.0 one GPU prints 0.24-0.26 GiB (Qwen3-14B on H100: 0.13 at v0.15-v0.17, 0.25 at
# v0.18; Gemma 2/3 and Phi-4 at v0.19.0: 0.24-0.26).
NON_TORCH_V1_GIB_FROM_018 = 0.25
NON_TORCH_V1_RAISED = (0, 18, 0)
# v0.19.0 with TP > 1 prints 2.06-2.21 GiB per GPU at TP=2 and TP=4 (ten models on H100), where
# v0.11 printed 0.54. What allocates it is not settled: v0.17.0 turned on the FlashInfer
# all-reduce + RMSNorm fusion by default, whose IPC workspace lives outside torch (though its
# size by FlashInfer's formula is ~0.5 GiB). Counted from v0.19.0, the first release a log shows
# it, and only where that fusion is on (`allreduce_fusion`); every other card keeps the older
# TP figure until one of its logs shows otherwise.
NON_TORCH_TP_V1_GIB_FROM_019 = 2.1
NON_TORCH_TP_RAISED = (0, 19, 0)
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
# v0.11.1 (vllm-project/vllm#26859), so it counts only when VLLM_USE_FLASHINFER_SAMPLER=1 asks
# for it.
SAMPLER_COPIES_FLASHINFER = 3.0
# v0.17.0 replaced the sort by a Triton top-k/top-p kernel for batches of 8 rows or more
# (vllm/v1/sample/ops/topk_topp_sampler.py apply_top_k_top_p: `if HAS_TRITON and
# logits.shape[0] >= 8: return apply_top_k_top_p_triton(...)`); fewer rows keep the sort.
# Measured: Qwen3-14B on H100 at 1024 requests printed 5.64 GiB at v0.15/v0.16 and 2.23 GiB at
# v0.17/v0.18 (3.84 copies); v0.19.0 logs of Gemma 2/3, Phi-4, Llama-3.1-8B and Qwen2.5-7B
# print 3.7-4.0 copies.
SAMPLER_COPIES_V1_TRITON = 3.9
SAMPLER_TRITON_FROM = (0, 17, 0)
SAMPLER_TRITON_MIN_ROWS = 8
# V0 samples only the last token of each profiled sequence: a couple of float32 copies.
SAMPLER_COPIES_V0 = 1.5
# V0 with TP > 1 gathers the logits on rank 0 only, and only rank 0 runs the sampler
# (vllm/model_executor/layers/logits_processor.py: `tensor_model_parallel_gather`, "None may be
# returned for rank > 0"; vllm/worker/model_runner.py: `if not self.is_driver_worker: return
# []`); the profile run asks for top_k = vocab - 1, so rank 0 sorts the whole vocabulary. The
# engine takes the smallest block count over the workers (vllm/executor/executor_base.py
# determine_num_available_blocks), i.e. rank 0's. Two 4090s at TP=2 (v0.7) printed 0.19 GiB
# on a rank > 0 while the engine's cache was 1.23 GiB smaller: 8.5 copies of [256 x vocab].
SAMPLER_COPIES_V0_RANK0 = SAMPLER_COPIES_V1
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
# vLLM picks the MXFP4 MoE backend by release and card, and each backend lays the experts out
# with its own alignment (create_weights in vllm/model_executor/layers/quantization/mxfp4.py up
# to v0.18; mxfp4_round_up_hidden_size_and_intermediate_size in
# vllm/model_executor/layers/fused_moe/oracle/mxfp4.py in v0.19). The Marlin MoE kernel needs
# n % 256 == 0 and k % 128 == 0: the per-rank expert intermediate size is padded to a multiple
# of 128 and the hidden size to one of 256, and the padded tensors replace the repack factor
# above: gpt-oss-120b at TP=4 on A100 loads 17.22 GiB per GPU (720 -> 768, 2880 -> 3072),
# gpt-oss-20b on one A100 13.72 GiB, gpt-oss-120b on one H100 under v0.10.1 65.97 GiB. ROCm
# rounds both to 256; the OpenAI Triton kernels round the intermediate size to 64 only.
MXFP4_BYTES_PER_PARAM = 4.25 / 8  # 4-bit values and one e8m0 scale per 32
MARLIN_MXFP4_INTERMEDIATE_ALIGN = 128
MARLIN_MXFP4_HIDDEN_ALIGN = 256
MXFP4_ALIGN = {  # backend -> (intermediate, hidden) alignment
    "marlin": (MARLIN_MXFP4_INTERMEDIATE_ALIGN, MARLIN_MXFP4_HIDDEN_ALIGN),
    "rocm": (256, 256),
    "triton": (64, 1),
}
# v0.12.0 builds the optional triton_kernels package into the wheel (CMakeLists.txt "also build
# the triton_kernels external package"); before, a stock install lacks it and vLLM falls back
# to Marlin on every CUDA card but sm_100 (v0.10.1 also pins torch 2.7.1, below the 2.8.0 the
# Triton path needs).
MXFP4_TRITON_BUILT_IN = (0, 12, 0)
# VLLM_MXFP4_USE_MARLIN: v0.10.1 returns it as the choice; v0.10.2-v0.11.0 do not read it;
# from v0.11.1 a true value forces Marlin.
MXFP4_ENV_IGNORED = ((0, 10, 2), (0, 11, 1))
# vLLM needs a little memory beyond the weights to load them at all (CUDA context, buffers).
LOAD_HEADROOM_GIB = 0.5
# Memory another process holds on the card at start (a second vLLM, a desktop session). The V1
# worker up to v0.9.0 and the V0 worker of v0.6.4 take `total - free` device-wide after the
# profile run and count what torch did not allocate as their own non-torch memory, so the KV
# cache shrinks by it (vllm/v1/worker/gpu_worker.py determine_available_memory, v0.9.0;
# vllm/worker/worker.py determine_num_available_blocks, v0.6.4). From v0.9.1 the V1 worker
# snapshots the card first and refuses to start when free < utilization x total ("Free memory
# on device ... is less than desired GPU memory utilization", init_device); V0 measures from its
# own start (v0.6.0: init_gpu_memory - free; v0.6.5+: the baseline snapshot) and, with no
# such check, runs out of memory allocating a cache that does not fit beside the other process.
HELD_CHARGED_V1 = ((0, 8, 0), (0, 9, 1))  # [from, to): V1 counts others' memory as its own
HELD_CHARGED_V0 = ((0, 6, 4), (0, 6, 5))  # the V0 release with the device-wide count

# Defaults of the OpenAI server when the setting is not given
# (vllm/engine/arg_utils.py EngineArgs.get_batch_defaults / _set_default_args_v1).
DEFAULT_UTILIZATION = 0.9
DEFAULT_MAX_NUM_SEQS = 256
V1_BATCHED_TOKENS = 2048
V1_LARGE_GPU_BATCHED_TOKENS = 8192  # >= 70 GiB and not an A100 (vllm-project/vllm#17885)
V1_LARGE_GPU_MAX_NUM_SEQS = 1024
V0_MIN_BATCHED_TOKENS = 2048  # V0 without chunked prefill: max(max_model_len, 2048)
# V0 chunked prefill (on by default above 32K context): SchedulerConfig's default batch is
# 512 tokens up to v0.6.4 and 2048 from v0.6.5 (vllm/config.py SchedulerConfig).
V0_CHUNKED_BATCHED_TOKENS = 2048
V0_CHUNKED_BATCHED_TOKENS_OLD = 512
V0_CHUNKED_2048_FROM = (0, 6, 5)
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
    mm: MmSettings | None = None  # --limit-mm-per-prompt, --skip-mm-profiling...
    pipeline_parallel_size: int = 1  # --pipeline-parallel-size: consecutive layer stages
    pp_layer_partition: tuple[int, ...] | None = None  # VLLM_PP_LAYER_PARTITION
    data_parallel_size: int = 1  # --data-parallel-size: engines of their own, MoE shared
    expert_parallel: bool = False  # --enable-expert-parallel: whole experts per rank
    mxfp4_use_marlin: bool | None = None  # VLLM_MXFP4_USE_MARLIN in extraEnv
    mxfp4_backend: str = ""  # the MXFP4 MoE backend a log showed ("" = vLLM's choice)

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
    desktop_gib: float = 0.0  # a desktop session's typical memory; estimate_gpu holds it
    arch: str = ""  # sm_89, gfx1100... ("" = unknown)
    held_gib: float = 0.0  # memory other processes hold when this instance starts

    @property
    def capability(self) -> tuple[int, int] | None:
        return compute_capability(self.arch)

    @classmethod
    def of(cls, profile: GpuProfile, *, held_gib: float = 0.0, desktop: bool = False) -> GpuBudget:
        """The budget of a profiled card; `desktop` adds its typical desktop session."""
        return cls(
            profile.name,
            profile.visible_gib,
            profile.bandwidth_gbs,
            profile.desktop_mib / 1024 if desktop else 0.0,
            arch=profile.arch,
            held_gib=held_gib,
        )

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
    mxfp4_backend: str = ""  # marlin, triton, rocm; "" = not MXFP4 or not modelled
    held: HeldMemory | None = None  # memory other processes held at start, and its effect
    mm_encoder: EncoderPass | None = None  # the vision tower's part of the profile run
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    expert_parallel_size: int = 1  # 1 = no expert parallelism
    local_experts: int = 0  # routed experts on one GPU (MoE)
    stages: list[dict[str, Any]] = field(default_factory=list)  # per pipeline stage, if several
    kv_check: str = ""  # how the pipeline's KV memory was checked ("per worker", "unified")
    rope_cache_gib: float = 0.0  # the rotary cos/sin cache inside weights_gib, whole on every GPU
    allreduce_fusion: bool = False  # the FlashInfer all-reduce fusion's non-torch figure applied
    tower_skipped: bool = False  # the vision tower is not built (every image limit 0)
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
            "mm_encoder": self.mm_encoder.as_dict() if self.mm_encoder else None,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "expert_parallel_size": self.expert_parallel_size,
            "stages": self.stages,
            "mxfp4_backend": self.mxfp4_backend or None,
            "memory_held_gib": round(self.held.held_gib, 2) if self.held else None,
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


def mxfp4_backend(gpu: GpuBudget, version: VllmVersion, use_marlin: bool | None = None) -> str:
    """The MXFP4 MoE backend vLLM picks: "marlin", "triton", "rocm", or "" when not modelled
    (sm_100's FlashInfer backends, a card without a known architecture).

    v0.10.1 (`_should_use_marlin`): VLLM_MXFP4_USE_MARLIN decides when set; else Marlin on every
    CUDA card but sm_100 (below cc 9, or without triton_kernels, or torch < 2.8.0, which v0.10.1
    pins). v0.10.2-v0.11.x (`get_mxfp4_backend`): Marlin "if get_device_capability()[0] < 9 or
    not has_triton_kernels()", and a stock install has no triton_kernels. From v0.12 (the
    package built in): Triton only where "(9, 0) <= get_device_capability() < (11, 0)", so
    Hopper; consumer Blackwell (sm_120) stays on Marlin; VLLM_MXFP4_USE_MARLIN=1 forces Marlin.
    ROCm pads to 256 whatever its backend.
    """
    if gpu.arch.startswith("gfx"):
        return "rocm"
    cc = gpu.capability
    if cc is None or cc[0] == 10:
        return ""
    env_read = not (MXFP4_ENV_IGNORED[0] <= version.parts < MXFP4_ENV_IGNORED[1])
    if version.parts < MXFP4_ENV_IGNORED[0] and use_marlin is not None:
        return "marlin" if use_marlin else "triton"
    if use_marlin and env_read:
        return "marlin"
    if version.at_least(MXFP4_TRITON_BUILT_IN) and (9, 0) <= cc < (11, 0):
        return "triton"
    return "marlin"


def mxfp4_padding(model: ModelSpec, moe_tp: int = 1, backend: str = "marlin") -> float:
    """How much larger a backend's aligned expert tensors are than the checkpoint's.

    `moe_tp` is the MoE layer's own TP size, the ranks that split each expert's intermediate
    size: TP x DP without expert parallel (flatten_tp_across_dp), 1 with it, where every rank
    holds whole experts (vllm/model_executor/layers/fused_moe/config.py
    FusedMoEParallelConfig.make: `tp_size=1` under `use_ep`)."""
    inter_align, hidden_align = MXFP4_ALIGN.get(backend, (1, 1))
    part = max(1, model.moe_intermediate // max(1, moe_tp))
    inter = _round_up(part, inter_align) / part
    hidden = _round_up(model.hidden, hidden_align) / model.hidden
    return inter * hidden


def weights_gib(
    model: ModelSpec, tp: int = 1, *, mxfp4_backend: str = "", moe_tp: int | None = None
) -> float:
    """The checkpoint as loaded, per GPU of a one-stage engine: checkpoint GB (the Hub's
    safetensors total_size) / 1.0737, / TP. The rotary cache (`rope_cache_gib`) is not in it:
    every GPU builds that whole, whatever share of the checkpoint it holds.

    MXFP4 experts take the layout of the backend: the padded backends (Marlin, ROCm) as the
    padded tensors themselves; Triton keeps the measured repack factor, with its intermediate
    rounding to 64 on the experts. `moe_tp` (default TP) is the MoE layer's own TP size, which
    sets the per-rank intermediate size the backend pads (`mxfp4_padding`)."""
    tp = max(1, tp)
    if model.quantization == "mxfp4" and model.is_moe and mxfp4_backend in MXFP4_ALIGN:
        experts = model.layers - model.dense_layers
        expert_params = experts * model.experts * 3 * model.hidden * model.moe_intermediate
        expert_gb = min(model.checkpoint_gb(), expert_params * MXFP4_BYTES_PER_PARAM / GB)
        rest_gb = model.checkpoint_gb() - expert_gb
        padding = mxfp4_padding(model, tp if moe_tp is None else moe_tp, mxfp4_backend)
        factor = LOAD_FACTOR["mxfp4"] if mxfp4_backend == "triton" else 1.0
        return (expert_gb * padding + rest_gb) * GB / GIB * factor / tp
    factor = LOAD_FACTOR.get(model.quantization, 1.0)
    return model.checkpoint_gb() * GB / GIB * factor / tp


def rope_cache_gib(model: ModelSpec) -> float:
    """The rotary cos/sin caches vLLM registers as buffers at load, on every rank: rows x
    rotary dim x 2 B, one cache per distinct rope (vllm/model_executor/layers/rotary_embedding
    base.py `register_buffer("cos_sin_cache", cache.to(dtype))`, shared through `_ROPE_DICT`).
    Tiny for most models; Gemma 3's global rope at 8 x 131072 positions of head dim 256 is
    0.5 GiB that "Model loading took" counts and no checkpoint holds."""
    rotary = model.qk_rope_head_dim if model.is_mla else model.head_dim
    rows = model.max_positions * (model.rope_factor + (1 if model.local_rope else 0))
    return rows * rotary * 2 / GIB


@dataclass(frozen=True)
class HeldMemory:
    """What a release does with memory other processes hold on the card when it starts.

    rule: "charged" (counted as this instance's non-torch memory: the KV cache shrinks by it),
    "refused" (V1 v0.9.1+: no start when free < utilization x total), or "oom" (V0: sized on its
    own, so a cache that does not fit beside the other process fails to allocate).
    """

    held_gib: float
    rule: str
    utilization: float
    visible_gib: float

    @property
    def charged_gib(self) -> float:
        return self.held_gib if self.rule == "charged" else 0.0

    @property
    def refused(self) -> bool:
        free = self.visible_gib - self.held_gib
        return self.rule != "charged" and free < self.utilization * self.visible_gib

    @property
    def max_utilization(self) -> float:
        """The highest utilization (hundredths) that still starts beside the held memory."""
        if self.rule == "charged" or self.visible_gib <= 0:
            return 1.0
        return math.floor(100 * (self.visible_gib - self.held_gib) / self.visible_gib) / 100


def held_memory(
    version: VllmVersion, visible_gib: float, utilization: float, held_gib: float
) -> HeldMemory:
    """The one rule for memory held by others at start, by release (see HELD_CHARGED_*)."""
    if version.engine == "v1":
        charged = HELD_CHARGED_V1[0] <= version.parts < HELD_CHARGED_V1[1]
        rule = "charged" if charged else "refused"
    else:
        charged = HELD_CHARGED_V0[0] <= version.parts < HELD_CHARGED_V0[1]
        rule = "charged" if charged else "oom"
    return HeldMemory(max(0.0, held_gib), rule, utilization, visible_gib)


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
        if version.at_least(V0_CHUNKED_2048_FROM):
            return V0_CHUNKED_BATCHED_TOKENS, seqs, True
        return V0_CHUNKED_BATCHED_TOKENS_OLD, seqs, True
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
    encoder: EncoderPass | None = None,
    version: tuple[int, int, int] = NEWEST_KNOWN,
) -> float:
    """Peak torch memory of the profile run above the weights, on the GPU that sizes the cache.

    V1 samples on every rank; its top-k/top-p pass sorts the vocabulary before v0.17.0 and uses
    a Triton kernel from then on (8 rows or more). V0 with TP > 1 samples on rank 0 only, and
    rank 0, holding the most, sizes the engine's cache.

    A pooling model's profile run ends with the pooler, not the sampler
    (vllm/v1/worker/gpu_model_runner.py profile_run: `_dummy_pooler_run` when
    `is_pooling_model`): no logits over the vocabulary, only the forward pass counts.
    A vision-language model first runs its encoder over the dummy images, and their outputs
    stay in the encoder cache through the text pass and the sampler (multimodal.py).
    """
    if model.is_moe:
        mlp = model.experts_per_token * model.moe_intermediate + model.shared_intermediate
    else:
        mlp = model.intermediate
    per_token = 2 * (3 * mlp / max(1, tp) + 2 * model.hidden)
    if encoder and encoder.forward_tokens:
        tokens = max(tokens, encoder.forward_tokens)  # V0: image placeholders lengthen it
    forward = FWD_TOKEN_FACTOR * tokens * per_token / GIB
    tower = encoder.encoder_gib if encoder else 0.0
    held = encoder.cache_gib if encoder else 0.0
    if pooling:
        return max(tower, held + forward)
    if encoder and encoder.profile_seqs is not None:
        seqs = min(seqs, encoder.profile_seqs)  # V0: the dummy batch cut to the images
    requests = min(seqs, tokens)
    logits = requests * model.vocab * 4 / GIB
    if engine == "v1":
        copies = sampler_copies(version, requests, flashinfer=flashinfer_sampler)
        return max(tower, held + max(forward, copies * logits))
    single = max(tower, held + forward) + (0.0 if chunked else SAMPLER_COPIES_V0 * logits)
    if tp > 1:
        return max(single, held + SAMPLER_COPIES_V0_RANK0 * logits)
    return single


def sampler_copies(
    version: tuple[int, int, int], requests: int, *, flashinfer: bool = False
) -> float:
    """Float32 copies of [requests x vocab] the V1 dummy sampler pass holds at its peak."""
    if flashinfer:
        return SAMPLER_COPIES_FLASHINFER
    if version >= SAMPLER_TRITON_FROM and requests >= SAMPLER_TRITON_MIN_ROWS:
        return SAMPLER_COPIES_V1_TRITON
    return SAMPLER_COPIES_V1


def allreduce_fusion(gpu: GpuBudget, tp: int, pp: int = 1, dp: int = 1) -> bool:
    """Whether vLLM turns on the FlashInfer all-reduce + RMSNorm fusion: TP > 1 on CUDA
    compute capability 9.0 or the 10.x family, without DP or PP (vllm/config/vllm.py
    enable_allreduce_rms_fusion, v0.19.1: `is_device_capability_family(100) or
    is_device_capability(90)`, "tp-dp combination broken", "tp-pp combination broken").
    An NVIDIA card of unknown capability is counted with it (the larger figure); ROCm never."""
    if tp <= 1 or pp > 1 or dp > 1 or gpu.arch.startswith("gfx"):
        return False
    cc = gpu.capability
    return cc is None or cc == (9, 0) or cc[0] == 10


def non_torch_gib(
    engine: str,
    tp: int = 1,
    *,
    version: tuple[int, int, int] = NEWEST_KNOWN,
    tensor_parallel: int | None = None,
    fusion: bool = False,
) -> float:
    """Memory outside torch's allocator on one GPU. `tp` counts the GPUs this one exchanges
    activations with (TP x pipeline stages x MoE ranks), `tensor_parallel` the TP size alone
    (default: `tp`), `fusion` whether the FlashInfer all-reduce fusion is on
    (`allreduce_fusion`)."""
    if engine != "v1":
        return NON_TORCH_V0_GIB
    base = NON_TORCH_V1_GIB_FROM_018 if version >= NON_TORCH_V1_RAISED else NON_TORCH_V1_GIB
    tensor = tp if tensor_parallel is None else tensor_parallel
    if fusion and tensor > 1 and version >= NON_TORCH_TP_RAISED:
        return max(NON_TORCH_TP_V1_GIB_FROM_019, base + NON_TORCH_TP_EXTRA_GIB)
    return base + (NON_TORCH_TP_EXTRA_GIB if tp > 1 else 0.0)


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


def _stage_core(engine: Engine, gpu: GpuBudget, stage: Stage | None = None) -> MemoryEstimate:
    """One GPU: the whole model, or one pipeline stage of it (`stage`), under the engine's TP
    and, for the MoE layers, DP x TP sharding."""
    model = engine.model
    tp = max(1, engine.tensor_parallel_size)
    gen = engine.version.engine
    tokens, seqs, chunked = batch_defaults(engine, gpu)
    usable = gpu.visible_gib * engine.gpu_memory_utilization
    backend = mxfp4_backend(gpu, engine.version, engine.mxfp4_use_marlin)
    backend = engine.mxfp4_backend or backend
    mxfp4 = model.quantization == "mxfp4" and model.is_moe
    held = held_memory(engine.version, gpu.visible_gib, engine.gpu_memory_utilization, gpu.held_gib)
    stage = stage or pp_stages(model)[0]
    dp = max(1, engine.data_parallel_size)
    part = stage.layers / model.layers
    skipped = tower_skipped(model, engine.version.parts, engine.mm, engine=gen)
    loaded = without_tower(model) if skipped else model
    ep = expert_parallel_size(model, tp, dp, engine.expert_parallel)
    moe_tp = 1 if ep > 1 else moe_ranks(model, tp, dp)
    weights = weights_gib(loaded, tp, mxfp4_backend=backend, moe_tp=moe_tp)
    if stage.count > 1 or moe_ranks(model, tp, dp) > tp:
        weights *= tp * gpu_share(loaded, stage, tp, dp)
    # the rotary cache is a buffer every rank builds whole, one per process (_ROPE_DICT)
    rope = rope_cache_gib(model)
    weights += rope
    mm = encoder_pass(
        model,
        engine=gen,
        version=engine.version.parts,
        batched_tokens=tokens,
        max_num_seqs=seqs,
        max_model_len=engine.model_len,
        chunked=chunked,
        tp=tp,
        settings=engine.mm,
    )
    act = activation_gib(
        model,
        tokens,
        seqs,
        engine=gen,
        tp=tp,
        chunked=chunked,
        pooling=engine.pooling,
        flashinfer_sampler=engine.flashinfer_sampler,
        encoder=mm,
        version=engine.version.parts,
    )
    # NCCL buffers wherever this GPU talks to others: TP, pipeline neighbours, MoE dispatch
    fusion = allreduce_fusion(gpu, tp, stage.count, dp)
    non_torch = non_torch_gib(
        gen,
        tp * stage.count * (moe_ranks(model, tp, dp) // tp),
        version=engine.version.parts,
        tensor_parallel=tp,
        fusion=fusion,
    )
    non_torch += held.charged_gib  # others' memory, where this release counts it as its own
    graphs = 0.0 if engine.enforce_eager else cudagraph_gib(replace(model, layers=stage.layers))
    graphs_in = engine.graphs_in_budget
    lora = lora_gib(model, engine.max_loras, engine.max_lora_rank, tp) * part
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
    # A stage holds its own layers of each KV cache group (kv_cache_utils.py
    # _project_kv_cache_groups_to_worker); its block spans the largest such share.
    block_bytes = per_layer_block * min(layout.group_size, stage.layers)
    per_token = per_token * stage.layers // model.layers
    blocks = max(0, int(kv * GIB // block_bytes)) if kv > 0 else 0
    # "GPU KV cache size: N tokens": blocks per group x block size (vllm/v1/core/kv_cache_utils.py)
    kv_tokens = blocks // layout.groups * BLOCK_SIZE
    model_len = engine.model_len
    per_request = layout.blocks_per_request(model_len, tokens)
    concurrency = blocks / per_request if per_request else 0.0
    if held.refused and held.rule == "refused":  # checked before the weights load
        failure: str | None = "held_memory"
    elif weights + LOAD_HEADROOM_GIB > gpu.visible_gib - held.held_gib:
        failure = "oom_weights"
    elif held.refused:  # V0: the cache allocation does not fit beside the other process
        failure = "held_memory"
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
        mxfp4_backend=backend if mxfp4 else "",
        held=held if held.held_gib else None,
        mm_encoder=mm,
        rope_cache_gib=rope,
        allreduce_fusion=fusion and gen == "v1" and engine.version.at_least(NON_TORCH_TP_RAISED),
        tower_skipped=skipped,
    )


def _core(engine: Engine, gpu: GpuBudget, stage_gpus: Sequence[GpuBudget] = ()) -> MemoryEstimate:
    """Every pipeline stage on its GPU (`stage_gpus`, else all on `gpu`), combined as the engine
    core does (vllm/v1/core/kv_cache_utils.py get_kv_cache_configs): each worker profiles its
    own memory, every worker gets the smallest block count among them, and the memory check
    (the "KV cache is needed" error) runs per worker with its own layers, except from v0.14
    until the fix, which checked every layer against the smallest worker's memory."""
    model = engine.model
    tp = max(1, engine.tensor_parallel_size)
    dp = max(1, engine.data_parallel_size)
    try:
        plan = pp_stages(model, engine.pipeline_parallel_size, engine.pp_layer_partition)
    except PartitionError:  # refused by vLLM and reported as such; size the default split
        plan = pp_stages(model, min(engine.pipeline_parallel_size, model.layers))
    cards = list(stage_gpus) or [gpu] * len(plan)
    results = [
        _stage_core(
            engine if st.last else replace(engine, pooling=True), cards[min(i, len(cards) - 1)], st
        )
        for i, st in enumerate(plan)
    ]
    ep = expert_parallel_size(model, tp, dp, engine.expert_parallel)
    for result in results:
        result.data_parallel_size = dp
        result.expert_parallel_size = ep
        result.local_experts = local_experts(model, ep)
    if len(results) == 1:
        return results[0]
    layout = kv_layout(model, hybrid=engine.hybrid_kv_enabled)
    blocks = min(r.gpu_blocks for r in results)
    per_request = layout.blocks_per_request(engine.model_len, results[-1].max_num_batched_tokens)
    unified = engine.version.engine == "v1" and (
        PP_UNIFIED_KV_CHECK[0] <= engine.version.parts < PP_UNIFIED_KV_CHECK[1]
    )
    if unified:
        base = min(results, key=lambda r: r.kv_cache_gib)
        whole_block = kv_bytes_per_token(model, engine.kv_cache_dtype, tp) * BLOCK_SIZE
        needed = per_request * whole_block / model.layers * layout.group_size / GIB
    else:
        base = min(results, key=lambda r: r.gpu_blocks)
        needed = base.kv_needed_gib
    hard = [
        r.failure for r in results if r.failure in ("held_memory", "oom_weights", "oom_kv_fixed")
    ]
    failure: str | None
    if hard:
        failure = hard[0]
    elif unified:
        failure = (
            "no_cache_memory"
            if base.kv_cache_gib <= 0
            else "kv_too_small"
            if needed > base.kv_cache_gib
            else None
        )
    else:
        failure = next((r.failure for r in results if r.failure), None)
    names = list(dict.fromkeys(r.gpu for r in results))
    return replace(
        base,
        gpu=" + ".join(names),
        gpu_blocks=blocks,
        kv_cache_tokens=blocks // layout.groups * BLOCK_SIZE,
        max_concurrency=blocks / per_request if per_request else 0.0,
        failure=failure,
        kv_needed_gib=needed,
        pipeline_parallel_size=len(plan),
        kv_check="unified" if unified else "per worker",
        stages=[
            {
                "stage": st.index,
                "gpu": r.gpu,
                "gpu_total_gib": round(r.gpu_total_gib, 2),
                "layers": [st.first_layer, st.first_layer + st.layers],
                "embedding": st.first or (st.last and model.tied),
                "lm_head": st.last,
                "weights_gib": round(r.weights_gib, 2),
                "activation_gib": round(r.activation_gib, 2),
                "non_torch_gib": round(r.non_torch_gib, 2),
                "kv_cache_gib": round(r.kv_cache_gib, 2),
                "kv_bytes_per_token": r.kv_bytes_per_token,
                "gpu_blocks": r.gpu_blocks,
                "kv_needed_gib": round(r.kv_needed_gib, 3),
                "failure": r.failure,
                "bottleneck": r is base,  # the stage whose figures the estimate shows
            }
            for st, r in zip(plan, results, strict=True)
        ],
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


def estimate(
    engine: Engine, gpu: GpuBudget, *, stage_gpus: Sequence[GpuBudget] = ()
) -> MemoryEstimate:
    """The full estimate: figures, verdict, largest max_model_len that fits, lowest utilization.

    With --max-model-len -1 vLLM itself picks the largest length that fits, up to the model's
    max_position_embeddings (vllm/v1/core/kv_cache_utils.py); the estimate does the same.
    `stage_gpus` gives each pipeline stage its own card (default: every stage on `gpu`).
    """
    limit = engine.model.max_positions

    def fits_len(length: int) -> bool:
        return _core(
            replace(engine, max_model_len=length, auto_max_model_len=False), gpu, stage_gpus
        ).starts

    fit = _largest(BLOCK_SIZE, max(limit, BLOCK_SIZE), fits_len)
    if engine.auto_max_model_len:
        engine = replace(engine, max_model_len=fit or limit, auto_max_model_len=False)
        result = _core(engine, gpu, stage_gpus)
        result.auto_max_model_len = True
    else:
        result = _core(engine, gpu, stage_gpus)
    result.max_model_len_fit = fit

    def fits_util(hundredths: int) -> bool:
        # monotone decreasing in "how much we give up": test 100 - hundredths
        util = (100 - hundredths) / 100
        return _core(replace(engine, gpu_memory_utilization=util), gpu, stage_gpus).starts

    # memory held by others caps the utilization that starts at all; search below that cap
    cap = held_memory(engine.version, gpu.visible_gib, 1.0, gpu.held_gib).max_utilization
    first = max(0, min(99, round(100 - 100 * cap)))
    if fits_util(first):
        given_up = _largest(first, 99, fits_util)
        result.min_utilization = round((100 - given_up) / 100, 2)
    result.decode_tokens_per_s = decode_ceiling(engine.model, gpu, engine.tensor_parallel_size)
    return result


def estimate_gpu(gpu: GpuBudget, engines: Sequence[Engine]) -> tuple[list[MemoryEstimate], float]:
    """Several vLLM instances (the server, instance archetypes...) sharing one GPU.

    Kubernetes does not order the pods' starts, so each instance is estimated as if it started
    last: every other one holds its utilization share of the card, beside `gpu.held_gib` and
    the desktop session (`gpu.desktop_gib`). Its release treats that memory as `held_memory`
    says: counted as its own (the KV cache shrinks), or a refusal when free memory is below
    its utilization x total. Returns the per-engine estimates and the memory left over after
    every share, the held memory and the desktop session (GiB; negative = the instance that
    starts last cannot).
    """
    base = gpu.held_gib + gpu.desktop_gib
    shares = [engine.gpu_memory_utilization * gpu.visible_gib for engine in engines]
    results = [
        estimate(engine, replace(gpu, held_gib=base + sum(shares) - share))
        for engine, share in zip(engines, shares, strict=True)
    ]
    return results, gpu.visible_gib - base - sum(shares)
