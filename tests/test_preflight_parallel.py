"""Data, expert and pipeline parallelism, each against the upstream code it mirrors
(vllm-project/vllm; the file and function are named in each test)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from archon.paths import calibration_cases
from archon.preflight import check_values
from archon.preflight.benchmark import evaluate_case
from archon.preflight.catalog import GB, ModelSpec
from archon.preflight.explain import steps as explain_steps
from archon.preflight.memory import (
    BLOCK_SIZE,
    GIB,
    Engine,
    GpuBudget,
    estimate,
    kv_bytes_per_token,
    rope_cache_gib,
    weights_gib,
)
from archon.preflight.parallel import (
    PartitionError,
    layer_counts,
    local_experts,
    parse_partition,
    stages,
)
from archon.preflight.profiles import load_profiles
from archon.preflight.settings import read_settings
from archon.preflight.versions import VllmVersion


def version(text: str) -> VllmVersion:
    parsed = VllmVersion.parse(text)
    assert parsed is not None
    return parsed


V0191 = version("v0.19.1")
H100 = GpuBudget("H100", 79.18, arch="sm_90")
CARD_16 = GpuBudget("16 GB card", 15.48, arch="sm_120")
CARD_32 = GpuBudget("32 GB card", 31.4, arch="sm_120")


pytestmark = pytest.mark.usefixtures("offline_hub_cache")


def moe(**arch: Any) -> ModelSpec:
    """A Qwen3-MoE-shaped model (Qwen3-30B-A3B's config.json figures)."""
    base: dict[str, Any] = {
        "layers": 48,
        "hidden": 2048,
        "heads": 32,
        "kv_heads": 4,
        "head_dim": 128,
        "intermediate": 6144,
        "vocab": 151936,
        "max_positions": 262144,
        "experts": 128,
        "experts_per_token": 8,
        "moe_intermediate": 768,
        "quantization": "fp8",
    }
    base.update(arch)
    return ModelSpec(name="example/moe", **base)


def dense(**arch: Any) -> ModelSpec:
    base: dict[str, Any] = {
        "layers": 32,
        "hidden": 4096,
        "heads": 32,
        "kv_heads": 8,
        "head_dim": 128,
        "intermediate": 14336,
        "vocab": 128256,
        "max_positions": 131072,
        "weights_gb": 16.06,
    }
    base.update(arch)
    return ModelSpec(name="example/dense", **base)


# ---- pipeline stages: vllm/distributed/utils.py get_pp_indices --------------------------------


def test_layers_split_like_get_pp_indices() -> None:
    # get_pp_indices: "layers_per_partition = num_hidden_layers // pp_size" and
    # "for i in range(2, remaining_layers + 2): partitions[-i] += 1": the remainder goes to the
    # stages before the last, from the second-to-last backwards
    assert layer_counts(48, 2) == [24, 24]
    assert layer_counts(62, 4) == [15, 16, 16, 15]
    assert layer_counts(30, 4) == [7, 8, 8, 7]
    assert layer_counts(13, 4) == [3, 3, 4, 3]
    # VLLM_PP_LAYER_PARTITION wins when given
    assert layer_counts(48, 2, (16, 32)) == [16, 32]


def test_a_partition_vllm_refuses() -> None:
    # get_pp_indices: ValueError "Invalid partition string", "len(partitions)=... does not
    # match pp_size=...", "sum(partitions)=... does not match num_hidden_layers=..."
    with pytest.raises(PartitionError):
        parse_partition("16;32")
    with pytest.raises(PartitionError):
        layer_counts(48, 2, (16, 16, 16))
    with pytest.raises(PartitionError):
        layer_counts(48, 2, (16, 30))
    assert parse_partition("16,32") == (16, 32)


def test_embedding_on_the_first_stage_lm_head_on_the_last() -> None:
    # vllm/model_executor/models/qwen2.py Qwen2Model: embed_tokens only
    # `if get_pp_group().is_first_rank or (config.tie_word_embeddings and
    # get_pp_group().is_last_rank)`, else PPMissingLayer; the lm_head only on the last rank
    model = dense(tied=False)
    engine = Engine(model=model, version=V0191, max_model_len=8192, pipeline_parallel_size=2)
    first, last = estimate(engine, H100).stages
    assert first["embedding"] and not first["lm_head"]
    assert last["lm_head"] and not last["embedding"]
    embedding_gib = model.vocab * model.hidden * 2 / GIB
    # equal layer counts: the stages differ by the embedding and lm_head alone, same size here
    assert first["weights_gib"] == pytest.approx(last["weights_gib"], abs=0.01)
    # the checkpoint splits between the stages; the rotary cache is a buffer each stage's
    # process builds whole (rotary_embedding/base.py `register_buffer("cos_sin_cache", ...)`,
    # one per process through `_ROPE_DICT`)
    rope = rope_cache_gib(model)
    whole = weights_gib(model) + 2 * rope
    assert first["weights_gib"] + last["weights_gib"] == pytest.approx(whole, abs=0.02)
    tied = estimate(
        Engine(model=dense(tied=True), version=V0191, max_model_len=8192, pipeline_parallel_size=2),
        H100,
    ).stages
    assert tied[1]["embedding"]  # a tied lm_head is the embedding, loaded on the last stage too
    assert tied[0]["weights_gib"] == pytest.approx(tied[1]["weights_gib"], abs=0.01)
    assert embedding_gib > 0.9  # the test above is not vacuous: 128256 x 4096 x 2 B


def test_sampler_pass_runs_on_the_last_stage_only() -> None:
    # vllm/v1/worker/gpu_model_runner.py profile_run: `if get_pp_group().is_last_rank:` ...
    # `self._dummy_sampler_run(last_hidden_states)`; the other stages profile the forward only
    est = estimate(
        Engine(model=moe(), version=V0191, max_model_len=8192, pipeline_parallel_size=2), H100
    )
    first, last = est.stages
    logits = 1024 * 151936 * 4 / GIB  # 1024 requests on a >= 70 GiB card
    # 3.9 copies: the v0.17+ Triton top-k/top-p kernel (tests/test_preflight_releases.py)
    assert last["activation_gib"] == pytest.approx(3.9 * logits, rel=0.01)
    assert first["activation_gib"] < 0.2 * last["activation_gib"]


def test_kv_per_stage_holds_its_own_layers_and_blocks_are_the_minimum() -> None:
    # vllm/v1/core/kv_cache_utils.py get_kv_cache_configs: "Change the num_blocks of each rank
    # to the smallest among all ranks"; a worker's page holds its own layers
    # (_project_kv_cache_groups_to_worker)
    model = moe()
    engine = Engine(
        model=model,
        version=V0191,
        max_model_len=32768,
        pipeline_parallel_size=2,
        pp_layer_partition=(16, 32),
    )
    est = estimate(engine, CARD_16, stage_gpus=[CARD_16, CARD_32])
    first, second = est.stages
    per_layer = kv_bytes_per_token(model) // model.layers
    assert first["kv_bytes_per_token"] == 16 * per_layer
    assert second["kv_bytes_per_token"] == 32 * per_layer
    for stage in est.stages:
        block = stage["kv_bytes_per_token"] * BLOCK_SIZE
        # the stage records round the KV memory to 0.01 GiB
        assert abs(stage["gpu_blocks"] - stage["kv_cache_gib"] * GIB / block) <= (
            0.005 * GIB / block + 1
        )
    assert est.gpu_blocks == min(first["gpu_blocks"], second["gpu_blocks"])
    assert est.kv_cache_tokens == est.gpu_blocks * BLOCK_SIZE
    assert est.pipeline_parallel_size == 2
    assert [s["gpu"] for s in est.stages] == ["16 GB card", "32 GB card"]


def test_the_kv_check_of_a_pipeline_by_release() -> None:
    # v0.14-v0.16 get_kv_cache_configs (vllm/v1/core/kv_cache_utils.py, v0.16.0):
    # "Check if the available memory is enough (using min across all workers)" ->
    # "_check_enough_kv_cache_memory(min(available_memory), ... global_kv_cache_groups ...)":
    # every layer against the smallest worker's memory (the "24.0 GiB KV cache is needed" of a
    # 48-layer model at 262144 tokens, vllm-project/vllm#34076). Before, and from v0.17.0, each
    # worker with its own layers (v0.17.0: "Check if the available memory is enough per
    # worker." -> `for groups, avail_mem in zip(projected_groups_per_worker,
    # available_memory)`)
    model = moe()
    base = Engine(
        model=model,
        version=version("0.15.2"),
        max_model_len=262144,
        pipeline_parallel_size=2,
        pp_layer_partition=(16, 32),
    )
    cards = [CARD_16, CARD_32]
    unified = estimate(base, CARD_16, stage_gpus=cards)
    assert unified.kv_check == "unified"
    assert unified.kv_needed_gib == pytest.approx(262144 * 48 * 2048 / GIB)  # 24.0 GiB
    smallest = min(s["kv_cache_gib"] for s in unified.stages)
    assert unified.kv_cache_gib == pytest.approx(smallest, abs=0.01)
    # vLLM's estimate: the length whose all-layer KV fits the smallest worker's memory
    per_token_all = kv_bytes_per_token(model)
    assert unified.max_model_len_fit == pytest.approx(smallest * GIB / per_token_all, rel=0.01)
    last_unified = estimate(replace(base, version=version("0.16.0")), CARD_16, stage_gpus=cards)
    assert last_unified.kv_check == "unified"
    assert last_unified.max_model_len_fit == unified.max_model_len_fit
    per_worker = estimate(replace(base, version=version("0.17.0")), CARD_16, stage_gpus=cards)
    assert per_worker.kv_check == "per worker"
    assert per_worker.max_model_len_fit > 2.5 * unified.max_model_len_fit
    older = estimate(replace(base, version=version("0.12.0")), CARD_16, stage_gpus=cards)
    assert older.max_model_len_fit == per_worker.max_model_len_fit


def test_one_stage_is_exactly_the_single_gpu_model() -> None:
    engine = Engine(model=moe(), version=V0191, max_model_len=32768)
    alone = estimate(engine, H100)
    explicit = estimate(replace(engine, pipeline_parallel_size=1, data_parallel_size=1), H100)
    assert alone.as_dict() == explicit.as_dict()
    assert alone.stages == []


# ---- data and expert parallel: vllm/model_executor/layers/fused_moe -------------------------


def test_experts_spread_over_dp_x_tp_ranks() -> None:
    # fused_moe/config.py FusedMoEParallelConfig.make: "use_ep = (dp_size_ * tp_size_ > 1 and
    # vllm_parallel_config.enable_expert_parallel)"; without EP, flatten_tp_across_dp: "tp_size
    # = dp_size_ * tp_size_": either way one GPU holds 1 / (DP x TP) of the routed experts,
    # while attention and embeddings are replicated per DP rank and split by TP
    model = moe(layers=62, hidden=6144, heads=96, kv_heads=8, experts=160, moe_intermediate=2560)
    one = Engine(model=model, version=V0191, max_model_len=8192)
    ep = estimate(replace(one, data_parallel_size=8, expert_parallel=True), H100)
    flat = estimate(replace(one, data_parallel_size=8), H100)
    assert ep.weights_gib == pytest.approx(flat.weights_gib)
    experts_gb = 62 * 160 * 3 * 6144 * 2560 / GB  # FP8: one byte a parameter
    rest_gb = model.checkpoint_gb() - experts_gb
    expected = (experts_gb / 8 + rest_gb) * GB / GIB
    assert ep.weights_gib == pytest.approx(expected, rel=0.01)
    assert ep.expert_parallel_size == 8 and flat.expert_parallel_size == 1
    assert ep.local_experts == 20 and flat.local_experts == 160
    # every DP rank caches every KV head of every layer (TP 1)
    assert ep.kv_bytes_per_token == 2 * 62 * 8 * 128 * 2


def test_local_experts_follow_determine_expert_map() -> None:
    # fused_moe/layer.py determine_expert_map: "base_experts = global_num_experts // ep_size;
    # remainder = global_num_experts % ep_size; local_num_experts = base_experts + 1 if
    # ep_rank < remainder else base_experts"
    model = moe(experts=10)
    assert [local_experts(model, 4, rank) for rank in range(4)] == [3, 3, 2, 2]
    assert local_experts(model, 1) == 10


def test_a_dense_model_under_data_parallel_is_a_replica() -> None:
    engine = Engine(model=dense(), version=V0191, max_model_len=8192)
    alone = estimate(engine, H100)
    replica = estimate(replace(engine, data_parallel_size=4, expert_parallel=True), H100)
    assert replica.weights_gib == pytest.approx(alone.weights_gib)
    assert replica.kv_cache_tokens == alone.kv_cache_tokens
    assert replica.expert_parallel_size == 1


# ---- settings, compatibility and the report ---------------------------------------------------


def values(**model: Any) -> dict[str, Any]:
    return {
        "gpu": {"count": model.pop("count", 1), "profile": "H100", "nodeCapacity": 8},
        "image": {"tag": "v0.19.1"},
        "model": {"name": "Qwen/Qwen3-30B-A3B-FP8", "quantization": "", "maxModelLen": 8192}
        | model,
        **({"extraEnv": model.pop("env")} if "env" in model else {}),
    }


def test_flags_are_read_in_every_spelling() -> None:
    # vllm/engine/arg_utils.py: "--data-parallel-size", "-dp"; "--pipeline-parallel-size",
    # "-pp"; "--enable-expert-parallel" (store_true)
    s = read_settings({"model": {"extraArgs": ["-dp=8", "--enable-expert-parallel", "-pp", "2"]}})
    assert (s.data_parallel_size, s.expert_parallel, s.pipeline_parallel_size) == (8, True, 2)
    s = read_settings(
        {"model": {"extraConfig": {"data_parallel_size": 2, "pipeline-parallel-size": 3}}}
    )
    assert (s.data_parallel_size, s.pipeline_parallel_size) == (2, 3)
    s = read_settings({"extraEnv": [{"name": "VLLM_PP_LAYER_PARTITION", "value": "16,32"}]})
    assert s.pp_layer_partition == (16, 32)
    assert not s.problems


@pytest.mark.parametrize(
    ("raw", "key", "needle"),
    [
        ({"model": {"extraArgs": ["-dp", "zero"]}}, "model.extraArgs", "--data-parallel-size"),
        ({"model": {"extraConfig": {"pipeline-parallel-size": 0}}}, "model.extraConfig", "1"),
        (
            {"model": {"extraArgs": ["--enable-expert-parallel=maybe"]}},
            "model.extraArgs",
            "--enable-expert-parallel",
        ),
        (
            {"extraEnv": [{"name": "VLLM_PP_LAYER_PARTITION", "value": "16;32"}]},
            "extraEnv",
            "VLLM_PP_LAYER_PARTITION",
        ),
    ],
)
def test_values_vllm_refuses_are_problems(raw: dict[str, Any], key: str, needle: str) -> None:
    problems = read_settings(raw).problems
    assert [p.key for p in problems] == [key]
    assert needle in problems[0].message


def test_gpu_count_must_cover_every_rank() -> None:
    report = check_values(values(count=2, extraArgs=["-dp", "2", "-pp", "2"]))
    hits = {f.rule: f for f in report.findings}
    finding = hits["parallel-beyond-gpus"]
    assert finding.level == "FAIL" and finding.problem.key == "gpu.count"
    assert "2 x 2" in finding.problem.message and "needs 4" in finding.problem.message
    clean = check_values(values(count=4, extraArgs=["-dp", "2", "-pp", "2"]))
    assert "parallel-beyond-gpus" not in {f.rule for f in clean.findings}


def test_a_partition_that_does_not_fit_the_model_fails() -> None:
    report = check_values(
        values(
            count=2,
            extraArgs=["--pipeline-parallel-size", "2"],
            env=[{"name": "VLLM_PP_LAYER_PARTITION", "value": "16,16"}],
        )
    )
    finding = next(f for f in report.findings if f.rule == "pp-layer-partition")
    assert finding.level == "FAIL" and finding.problem.key == "extraEnv"
    assert "48 layers" in finding.problem.message
    assert report.estimate is not None  # the default split is still sized


def test_report_json_names_the_layout() -> None:
    report = check_values(
        values(count=8, extraArgs=["-dp=4", "--enable-expert-parallel", "-pp", "2"])
    )
    data = report.as_dict()
    assert data["data_parallel_size"] == 4
    assert data["expert_parallel_size"] == 4
    assert data["pipeline_parallel_size"] == 2
    assert [s["layers"] for s in data["stages"]] == [[0, 24], [24, 48]]
    json.dumps(data)
    plain = check_values(values()).as_dict()
    assert plain["stages"] == [] and plain["pipeline_parallel_size"] == 1


# ---- the calibration cases -------------------------------------------------------------------


def _case(number: int) -> dict[str, Any]:
    for line in Path(calibration_cases()).read_text(encoding="utf-8").splitlines():
        if line.strip():
            case = json.loads(line)
            if case.get("id") == number:
                return dict(case)
    raise AssertionError(f"case {number} not found")


def test_heterogeneous_pipeline_case_replays_per_stage() -> None:
    case = _case(29)
    result = evaluate_case(case, load_profiles())
    record = result.record
    assert record["verdict"] == "fail" and result.verdict_ok
    assert record["kv_check"] == "unified"
    first, second = record["stages"]
    assert first["layers"] == [0, 16] and second["layers"] == [16, 48]
    assert first["gpu"] == "RTX 5070 Ti" and second["gpu"] == "RTX 5090"
    # vLLM printed 3.18 GiB for the smaller worker and an estimated length of 34736
    assert record["kv_cache_gib"] == pytest.approx(3.18, rel=0.12)
    assert record["estimated_max_model_len"] == pytest.approx(34736, rel=0.12)


def test_an_unknown_stage_card_skips_with_a_reason() -> None:
    case = _case(29) | {"gpus": [{"gpu": "RTX 5070 Ti"}, {"gpu": "Mystery 48GB"}]}
    record = evaluate_case(case, load_profiles()).record
    assert record["verdict"] is None and "Mystery 48GB" in record["reason"]


def test_stages_of_the_default_split() -> None:
    assert [(s.first_layer, s.layers) for s in stages(moe(), 3)] == [(0, 16), (16, 16), (32, 16)]


def test_explain_names_the_split_and_its_sources() -> None:
    report = check_values(
        values(count=8, extraArgs=["-dp=4", "--enable-expert-parallel", "-pp", "2"])
    )
    assert report.engine is not None and report.estimate is not None
    rows = {step.name: step for step in explain_steps(report.engine, report.estimate)}
    assert "determine_expert_map" in rows["data parallel"].source
    assert "32 of 128 experts per GPU" in rows["data parallel"].arithmetic
    assert "get_pp_indices" in rows["stage 0"].source
    assert "layers 0-23, embedding" in rows["stage 0"].arithmetic
    assert "lm_head" in rows["stage 1"].arithmetic
    assert "get_kv_cache_configs" in rows["pipeline blocks"].source
    # the KV lines below the split are the bottleneck stage's: its 24 layers
    assert "24 layers" in rows["KV bytes per token"].arithmetic


# ---- --explain under pipeline stages of a sliding-window model -------------------------------

_NUMBER = r"(\d+(?:\.\d+)?)"


def _find(pattern: str, text: str) -> list[float]:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return [float(group) for group in match.groups()]


def _gemma3_pp2(env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "gpu": {"count": 2, "profile": "RTX 5090", "nodeCapacity": 2},
        "image": {"tag": "v0.19.1"},
        "model": {
            "name": "google/gemma-3-12b-it",
            "quantization": "",
            "maxModelLen": 32768,
            "extraArgs": ["-pp", "2"],
        },
        **({"extraEnv": env} if env else {}),
    }


@pytest.mark.parametrize(
    ("env", "bottleneck"),
    [
        (None, 1),  # 24 + 24 layers: the last stage, with the sampler pass, holds the most
        ([{"name": "VLLM_PP_LAYER_PARTITION", "value": "30,18"}], 0),  # the first stage
    ],
)
def test_explain_lines_recompute_for_a_hybrid_model_in_stages(
    env: list[dict[str, str]] | None, bottleneck: int
) -> None:
    # Gemma-3-12B: 48 layers, 40 sliding (window 1024) and 8 full; vLLM groups them into 1 full
    # + 5 sliding groups of 8 layers (vllm/v1/core/kv_cache_utils.py
    # _get_kv_cache_groups_uniform_page_size), and v0.17+ projects each group onto a worker's
    # own layers (_project_kv_cache_groups_to_worker: "group_layer_names_one_worker = [layer_name
    # for layer_name in group.layer_names if layer_name in worker_spec]"); "GPU KV cache size"
    # is num_blocks // len(kv_cache_groups) * block_size. Only the last stage samples
    # (gpu_model_runner.py profile_run: `if get_pp_group().is_last_rank: ...
    # self._dummy_sampler_run(last_hidden_states)`). Each line's arithmetic must give the figure
    # it prints, to the rounding of the figures it shows.
    report = check_values(_gemma3_pp2(env))
    assert report.engine is not None and report.estimate is not None
    est = report.estimate
    own = est.stages[bottleneck]
    assert own["bottleneck"] and est.gpu_blocks == own["gpu_blocks"]
    rows = {step.name: step for step in explain_steps(report.engine, est)}

    def value(name: str) -> float:
        return float(rows[name].value.split()[0].rstrip("x"))

    visible, util = _find(rf"{_NUMBER} GiB visible x {_NUMBER}", rows["usable"].arithmetic)
    assert value("usable") == pytest.approx(visible * util, abs=0.006)

    # weights: this GPU's checkpoint share + the whole rotary cache (every rank builds it)
    share, ckpt, whole, rope = _find(
        rf"^{_NUMBER} GiB, this GPU's share .* of {_NUMBER} GB checkpoint .* x 1e9 / 2\^30 = "
        rf"{_NUMBER} GiB \+ {_NUMBER} GiB rotary cos/sin cache",
        rows["weights"].arithmetic,
    )
    assert whole == pytest.approx(ckpt * 1e9 / 2**30, abs=0.006)
    assert value("weights") == pytest.approx(share + rope, abs=0.011)
    assert rope == pytest.approx(131072 * 9 * 256 * 2 / GIB, abs=0.006)  # 8 x scaled + local

    # activation: the encoder pass runs on every stage; the sampler only on the last
    encoder, outputs = value("encoder pass"), value("encoder outputs")
    act = rows["activation peak"].arithmetic
    if bottleneck == len(est.stages) - 1:
        copies, seqs, vocab = _find(
            rf"{_NUMBER} x min\({_NUMBER} seqs, tokens\) x {_NUMBER} vocab", act
        )
        sampler = copies * min(seqs, est.max_num_batched_tokens) * vocab * 4 / GIB
        assert value("activation peak") == pytest.approx(max(encoder, outputs + sampler), abs=0.02)
    else:
        assert "vocab" not in act and "sampler" not in act.split(";")[0]
        tokens, mlp, hidden, forward = _find(
            rf"forward of {_NUMBER} tokens x 2 B x \(3 x {_NUMBER} .* \+ 2 x {_NUMBER} hidden\) = "
            rf"{_NUMBER} GiB",
            act,
        )
        assert forward == pytest.approx(tokens * 2 * (3 * mlp + 2 * hidden) / GIB, abs=0.006)
        assert value("activation peak") == pytest.approx(max(encoder, outputs + forward), abs=0.02)

    graphs = value("CUDA graphs")
    spent = value("weights") + value("activation peak") + value("non-torch") + graphs
    assert value("KV cache") == pytest.approx(value("usable") - spent, abs=0.03)

    kv = value("KV bytes per token")
    layers, heads, dim, size = _find(
        rf"2 \(K, V\) x {_NUMBER} layers x {_NUMBER} KV heads x {_NUMBER} head_dim x {_NUMBER} B",
        rows["KV bytes per token"].arithmetic,
    )
    first, end = own["layers"]
    assert layers == end - first
    assert kv == 2 * layers * heads * dim * size

    full, sliding, size_of_group, span = _find(
        rf"{_NUMBER} full-attention \+ {_NUMBER} sliding-window groups of {_NUMBER} layers .*"
        rf"= {_NUMBER} layers",
        rows["KV cache groups"].arithmetic,
    )
    assert (full, sliding, size_of_group) == (1, 5, 8)
    assert value("KV cache groups") == full + sliding
    assert span == min(size_of_group, layers)

    kv_gib, block_mib, block_tokens, block_layers = _find(
        rf"floor\({_NUMBER} GiB / {_NUMBER} MiB per block of {_NUMBER} tokens x {_NUMBER} layers",
        rows["blocks"].arithmetic,
    )
    assert block_mib * 2**20 == pytest.approx(kv / layers * block_tokens * block_layers, abs=600)
    slack = 0.005 * 1024 / block_mib + 1  # the KV figure is printed to 0.01 GiB
    assert value("blocks") == pytest.approx(kv_gib * 1024 / block_mib, abs=slack)

    blocks, groups, tokens_per_block = _find(
        rf"{_NUMBER} blocks // {_NUMBER} groups x {_NUMBER}", rows["KV cache tokens"].arithmetic
    )
    assert value("KV cache tokens") == blocks // groups * tokens_per_block
    assert blocks == value("blocks") and groups == value("KV cache groups")
    assert est.kv_cache_tokens == value("KV cache tokens")

    blocks, per_request = _find(
        rf"{_NUMBER} blocks / {_NUMBER} blocks per request", rows["max concurrency"].arithmetic
    )
    assert value("max concurrency") == pytest.approx(blocks / per_request, abs=0.006)
