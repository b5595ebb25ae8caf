"""What changes with the vLLM release: the sampler's share of the profile run, memory outside
torch, V0's tensor-parallel ranks and V0's chunked-prefill batch. Each test quotes the upstream
code it mirrors (vllm-project/vllm, path and release) or the public start-up logs that measure
what the code does not fix."""

from __future__ import annotations

from dataclasses import replace

import pytest

from archon.preflight.catalog import load_catalog
from archon.preflight.explain import steps
from archon.preflight.memory import (
    GIB,
    Engine,
    GpuBudget,
    activation_gib,
    batch_defaults,
    estimate,
    non_torch_gib,
    sampler_copies,
)
from archon.preflight.versions import VllmVersion

pytestmark = pytest.mark.usefixtures("offline_hub_cache")


def version(text: str) -> VllmVersion:
    parsed = VllmVersion.parse(text)
    assert parsed is not None
    return parsed


# H100 80GB HBM3 as vLLM v0.19.0 reports it: "Free memory on device (78.68/79.19 GiB)"
H100 = GpuBudget("H100", 79.19, arch="sm_90")
# llm-d-incubation/llm-d-planner at d3121e059da88662db39a926a3ead964be97359b
PLANNER = "llm-d-incubation/llm-d-planner:accuracy/results"


# ---- the V1 sampler pass: a full sort up to v0.16, a Triton kernel from v0.17 ---------------


def test_sampler_sorts_the_vocabulary_up_to_v0_16_and_runs_a_triton_kernel_from_v0_17() -> None:
    # vllm/v1/sample/ops/topk_topp_sampler.py, v0.16.0, apply_top_k_top_p:
    #     logits_sort, logits_idx = logits.sort(dim=-1, descending=False)
    # the same function in v0.17.0 (unchanged in v0.18.0 and v0.19.1):
    #     if HAS_TRITON and logits.shape[0] >= 8:
    #         return apply_top_k_top_p_triton(logits, k, p)
    #     # Use pytorch sort implementation for small batch sizes.
    #     return apply_top_k_top_p_pytorch(logits, k, p)
    # and the dummy sampler run asks for both (vllm/v1/worker/gpu_model_runner.py v0.19.1
    # _dummy_sampler_run: top_p=dummy_tensors(0.9), top_k=dummy_tensors(logits.size(1) - 1))
    assert sampler_copies((0, 16, 0), 1024) == 9.7
    assert sampler_copies((0, 17, 0), 1024) == 3.9
    assert sampler_copies((0, 17, 0), 8) == 3.9
    assert sampler_copies((0, 17, 0), 7) == 9.7  # below 8 rows the sort is kept
    # VLLM_USE_FLASHINFER_SAMPLER=1 ("FlashInfer top-p/top-k sampling is available but disabled
    # by default", v0.19.0 log) replaces both
    assert sampler_copies((0, 16, 0), 1024, flashinfer=True) == 3.0
    assert sampler_copies((0, 19, 1), 1024, flashinfer=True) == 3.0

    model = load_catalog().find("Qwen/Qwen3-14B")
    logits = 7 * model.vocab * 4 / GIB
    # seven dummy requests of one token each: the sampler sets the peak, and it still sorts
    assert activation_gib(model, 7, 7, engine="v1", version=(0, 19, 1)) == pytest.approx(
        9.7 * logits
    )


def test_the_triton_kernel_halves_the_printed_activation_of_qwen3_14b() -> None:
    # The same Qwen3-14B start-up on H100 at 1024 dummy requests under four releases
    # (PLANNER/version-sweep/runs/qwen3-14b-vllm-v0-1{5,6,7,8}-0--h100-80gb--tp1pp1dp1--8192.json,
    # parsed from vLLM's "Memory profiling takes ..." line): activation 5.64 GiB at v0.15.0 and
    # v0.16.0, 2.23 GiB at v0.17.0 and v0.18.0; non-torch 0.13 up to v0.17.0, 0.25 at v0.18.0.
    model = load_catalog().find("Qwen/Qwen3-14B")
    printed = {"v0.15.0": 5.64, "v0.16.0": 5.64, "v0.17.0": 2.23, "v0.18.0": 2.23}
    for tag, activation in printed.items():
        engine = Engine(
            model=model, version=version(tag), gpu_memory_utilization=0.95, max_model_len=8192
        )
        est = estimate(engine, H100)
        assert (est.max_num_seqs, est.max_num_batched_tokens) == (1024, 8192)
        assert est.activation_gib == pytest.approx(activation, abs=0.12), tag
    nt = {"v0.15.0": 0.13, "v0.16.0": 0.13, "v0.17.0": 0.13, "v0.18.0": 0.25}
    for tag, printed_nt in nt.items():
        assert non_torch_gib("v1", version=version(tag).parts) == pytest.approx(
            printed_nt, abs=0.03
        )


@pytest.mark.parametrize(
    ("model", "log", "activation", "kv_tokens"),
    [
        ("google/gemma-2-9b-it", "google-gemma-2-9b-it", 3.65, 168880),
        ("google/gemma-3-12b-it", "google-gemma-3-12b-it", 3.94, 130304),
        ("microsoft/phi-4", "microsoft-phi-4", 1.52, 241568),
    ],
)
def test_v0_19_logs_land_on_the_triton_sampler(
    model: str, log: str, activation: float, kv_tokens: int
) -> None:
    # PLANNER/v0.19.0/logs/<log>--h100-80gb--tp1pp1dp1--8192.log: 'max_model_len': 8192,
    # 'gpu_memory_utilization': 0.95, "Defaulting max_num_seqs to 1024", and "Memory profiling
    # takes ... torch peak memory increase: <activation>GiB; non-torch forward increase memory:
    # 0.24-0.26GiB", "GPU KV cache size: <kv_tokens> tokens"
    engine = Engine(
        model=load_catalog().find(model),
        version=version("v0.19.0"),
        gpu_memory_utilization=0.95,
        max_model_len=8192,
    )
    est = estimate(engine, H100)
    assert est.activation_gib == pytest.approx(activation, rel=0.05)
    assert est.non_torch_gib == pytest.approx(0.25, abs=0.011)
    assert est.kv_cache_tokens == pytest.approx(kv_tokens, rel=0.03)


# ---- memory outside torch by release -----------------------------------------------------------


def test_non_torch_memory_by_release_and_tensor_parallelism() -> None:
    # No vLLM code fixes these figures; they are what vLLM prints as "non-torch forward increase
    # memory" (vllm/v1/worker/gpu_worker.py determine_available_memory):
    # one GPU: 0.13 GiB up to v0.17.0, 0.25 from v0.18.0 (Qwen3-14B sweep above)
    assert non_torch_gib("v1", version=(0, 17, 0)) == 0.15
    assert non_torch_gib("v1", version=(0, 18, 0)) == 0.25
    # TP=2: 0.54 GiB at v0.11 (llm-d/llm-d-benchmark config_explorer/
    # empirical-vllm-memory-results.md, Qwen3-32B), 2.06-2.21 GiB per GPU at v0.19.0 on TP=2
    # and TP=4 (PLANNER/v0.19.0/logs/*--tp2pp1dp1--* and *--tp4pp1dp1--*)
    assert non_torch_gib("v1", 2, version=(0, 11, 0)) == pytest.approx(0.55)
    assert non_torch_gib("v1", 2, version=(0, 18, 0)) == pytest.approx(0.65)
    assert non_torch_gib("v1", 2, version=(0, 19, 0), fusion=True) == 2.1
    assert non_torch_gib("v1", 4, version=(0, 19, 1), fusion=True) == 2.1
    # measured on H100 only: without the FlashInfer all-reduce fusion the older TP share stays
    assert non_torch_gib("v1", 2, version=(0, 19, 1)) == pytest.approx(0.65)
    # pipeline stages exchange activations but are not tensor-parallel ranks
    assert non_torch_gib("v1", 2, version=(0, 19, 1), tensor_parallel=1) == pytest.approx(0.65)
    assert non_torch_gib("v0", 2, version=(0, 7, 2)) == 0.33


def test_llama_8b_at_tp_2_on_v0_19_replays_the_printed_figures() -> None:
    # PLANNER/v0.19.0/logs/meta-llama-llama-3-1-8b---h100-80gb--tp2pp1dp1--8192.log, on both
    # ranks: "Total non KV cache memory: 11.47GiB; torch peak memory increase: 1.89GiB;
    # non-torch forward increase memory: 2.07GiB; weights memory: 7.51GiB", "Available KV cache
    # memory: 63.76 GiB", "GPU KV cache size: 1,044,688 tokens"
    engine = Engine(
        model=load_catalog().find("meta-llama/Llama-3.1-8B-Instruct"),
        version=version("v0.19.0"),
        gpu_memory_utilization=0.95,
        max_model_len=8192,
        tensor_parallel_size=2,
    )
    est = estimate(engine, H100)
    assert est.activation_gib == pytest.approx(1.89, abs=0.05)
    assert est.non_torch_gib == pytest.approx(2.07, abs=0.05)
    assert est.kv_cache_gib == pytest.approx(63.76, abs=0.3)
    assert est.kv_cache_tokens == pytest.approx(1044688, rel=0.01)
    # the same start-up one release earlier kept the old TP share, 1.45 GiB more KV cache
    older = estimate(replace(engine, version=version("v0.18.0")), H100)
    assert older.kv_cache_gib - est.kv_cache_gib == pytest.approx(2.1 - 0.65, abs=0.01)


def test_the_tp_non_torch_figure_of_v0_19_needs_the_allreduce_fusion() -> None:
    # vllm/config/vllm.py (v0.19.1) enable_allreduce_rms_fusion: "tensor_parallel_size > 1 and
    # current_platform.is_cuda() and has_flashinfer() and (
    # current_platform.is_device_capability_family(100) or
    # current_platform.is_device_capability(90))", and "data_parallel_size == 1" ("tp-dp
    # combination broken"), "pipeline_parallel_size == 1" ("tp-pp combination broken")
    model = load_catalog().find("meta-llama/Llama-3.1-8B-Instruct")
    engine = Engine(model=model, version=version("v0.19.1"), tensor_parallel_size=2)
    cards = {
        "sm_90": (True, 2.1),
        "sm_100": (True, 2.1),
        "sm_103": (True, 2.1),
        "sm_89": (False, 0.65),
        "sm_120": (False, 0.65),
        "sm_80": (False, 0.65),
        "gfx1100": (False, 0.65),
    }
    for arch, (fused, figure) in cards.items():
        est = estimate(engine, GpuBudget(arch, 79.18, arch=arch))
        assert est.allreduce_fusion is fused, arch
        assert est.non_torch_gib == pytest.approx(figure), arch
        rows = {row.name: row.arithmetic for row in steps(engine, est)}
        assert ("fusion is on" in rows["non-torch"]) == fused
        assert ("fusion's figure does not apply" in rows["non-torch"]) == (not fused)
    # two RTX 5080s at TP 2 keep their v0.18 KV cache on v0.19.1
    card = GpuBudget("RTX 5080", 15.48, arch="sm_120")
    small = replace(engine, max_model_len=4096, gpu_memory_utilization=0.9)
    assert estimate(small, card).kv_cache_gib == pytest.approx(
        estimate(replace(small, version=version("v0.18.0")), card).kv_cache_gib, abs=0.01
    )
    # an H100 pair with data parallel: no fusion either
    dp = estimate(replace(engine, data_parallel_size=2), GpuBudget("H100", 79.18, arch="sm_90"))
    assert not dp.allreduce_fusion and dp.non_torch_gib < 1.0


# ---- V0 with tensor parallelism: rank 0 samples, and sizes the cache ----------------------------


def test_v0_tp_rank_0_alone_gathers_the_logits_and_sizes_the_cache() -> None:
    # v0.7.2 vllm/model_executor/layers/logits_processor.py:
    #     # None may be returned for rank > 0
    #     logits = tensor_model_parallel_gather(logits)
    # vllm/worker/model_runner.py: `if not self.is_driver_worker: return []` before
    # `self.model.sample(...)`, and profile_run's
    #     sampling_params = SamplingParams(top_p=0.99, top_k=self.vocab_size - 1)
    # so rank 0 sorts [requests x vocab]; vllm/executor/executor_base.py:
    #     results = self.collective_rpc("determine_num_available_blocks")
    #     a = min([r[0] for r in results])
    model = load_catalog().find("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B")
    logits = 256 * model.vocab * 4 / GIB
    single = activation_gib(model, 2048, 256, engine="v0", tp=1, chunked=True, version=(0, 7, 2))
    rank0 = activation_gib(model, 2048, 256, engine="v0", tp=2, chunked=True, version=(0, 7, 2))
    assert single < 0.2  # the chunked forward pass only
    assert rank0 == pytest.approx(9.7 * logits)
    # vllm-project/vllm#13061: two RTX 4090s, --tensor_parallel_size 2
    # --gpu_memory_utilization=0.98, max_model_len left at 131072; a rank > 0 printed "PyTorch
    # activation peak memory takes 0.19GiB ... reserved for KV Cache is 8.69GiB", the engine
    # "maximum number of tokens that can be stored in KV cache (81536)"
    engine = Engine(
        model=model,
        version=version("v0.7.2"),
        gpu_memory_utilization=0.98,
        tensor_parallel_size=2,
    )
    est = estimate(engine, GpuBudget("RTX 4090", 23.55, arch="sm_89"))
    assert est.failure == "kv_too_small"
    assert est.kv_cache_tokens == pytest.approx(81536, rel=0.03)


# ---- V0's chunked-prefill batch ------------------------------------------------------------------


def test_v0_chunked_prefill_batch_is_512_up_to_v0_6_4_and_2048_from_v0_6_5() -> None:
    # vllm/config.py SchedulerConfig, v0.6.4 (line 1114):
    #     # It is the values that have the best balance between ITL
    #     # and TTFT on A100. Note it is not optimized for throughput.
    #     max_num_batched_tokens = 512
    # v0.6.5 (lines 1342-1344, the same in v0.7.2):
    #     # This value is chosen to have a balance between ITL
    #     # and TTFT. Note it is not optimized for throughput.
    #     self.max_num_batched_tokens = 2048
    # chunked prefill itself is on by default above 32K context (vllm/engine/arg_utils.py)
    model = load_catalog().find("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B")
    card = GpuBudget("RTX 4090", 23.55, arch="sm_89")
    for tag, tokens in (("v0.6.4", 512), ("v0.6.5", 2048), ("v0.7.2", 2048)):
        engine = Engine(model=model, version=version(tag), max_model_len=65536)
        assert batch_defaults(engine, card) == (tokens, 256, True), tag
    # without chunked prefill a batch holds a whole prompt, in every V0 release
    short = Engine(model=model, version=version("v0.7.2"), max_model_len=16384)
    assert batch_defaults(short, card) == (16384, 256, False)


def test_explain_names_the_sampler_and_the_non_torch_figure_of_the_release() -> None:
    model = load_catalog().find("meta-llama/Llama-3.1-8B-Instruct")

    def rows(tag: str, tp: int = 1) -> dict[str, str]:
        engine = Engine(
            model=model, version=version(tag), max_model_len=8192, tensor_parallel_size=tp
        )
        return {r.name: r.arithmetic for r in steps(engine, estimate(engine, H100))}

    assert "3.9 x min(1024 seqs" in rows("v0.19.1")["activation peak"]
    assert "Triton" in rows("v0.19.1")["activation peak"]
    assert "9.7 x min(1024 seqs" in rows("v0.16.0")["activation peak"]
    assert "a full sort" in rows("v0.16.0")["activation peak"]
    assert "with TP > 1 from v0.19 2.1 GiB per GPU" in rows("v0.19.1", tp=2)["non-torch"]
    assert "0.15 GiB on one GPU" in rows("v0.16.0")["non-torch"]
    assert "rank 0" in rows("v0.7.2", tp=2)["activation peak"]
