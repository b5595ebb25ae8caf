"""Memory another process holds on the card when vLLM starts (a second instance, a desktop
session), by release, against the vLLM code each rule mirrors (vllm-project/vllm)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from archon.preflight import check_values
from archon.preflight.benchmark import evaluate_case, run
from archon.preflight.catalog import load_catalog
from archon.preflight.explain import steps
from archon.preflight.memory import Engine, GpuBudget, estimate, estimate_gpu, held_memory
from archon.preflight.profiles import load_profiles
from archon.preflight.versions import VllmVersion

SMALL = "Qwen/Qwen2.5-0.5B-Instruct"
CARD = GpuBudget("RTX 4060 Ti 8GB", 7.56, arch="sm_89")


def _version(text: str) -> VllmVersion:
    version = VllmVersion.parse(text)
    assert version is not None
    return version


def _engine(release: str, utilization: float = 0.45) -> Engine:
    return Engine(
        model=load_catalog().find(SMALL),
        version=_version(release),
        gpu_memory_utilization=utilization,
        max_model_len=4096,
    )


@pytest.mark.parametrize(
    ("release", "rule"),
    [
        # vllm/worker/worker.py v0.6.0 determine_num_available_blocks: "peak_memory =
        # self.init_gpu_memory - free_gpu_memory" (measured from this worker's start)
        ("0.6.0", "oom"),
        # v0.6.4: "total_allocated_bytes = torch.cuda.mem_get_info()[1] -
        # torch.cuda.mem_get_info()[0]; non_torch_allocations = total_allocated_bytes -
        # torch_allocated_bytes": device-wide, so another process's memory is counted as ours
        ("0.6.4", "charged"),
        # v0.6.5 memory_profiling(baseline_memory_in_bytes=total_gpu_memory -
        # self.init_gpu_memory, ...): measured against the baseline at this worker's start
        ("0.6.5", "oom"),
        ("0.7.2", "oom"),
        # vllm/v1/worker/gpu_worker.py v0.9.0 determine_available_memory: the same device-wide
        # "total_allocated_bytes" added to peak_memory
        ("0.8.0", "charged"),
        ("0.9.0", "charged"),
        # v0.9.1 init_device: "if self.init_snapshot.free_memory < self.requested_memory: ...
        # raise ValueError(f'Free memory on device ... is less than desired GPU memory
        # utilization ...')"; v0.19.1 vllm/v1/worker/utils.py request_memory, the same check
        ("0.9.1", "refused"),
        ("0.19.1", "refused"),
    ],
)
def test_the_rule_by_release(release: str, rule: str) -> None:
    assert held_memory(_version(release), 7.56, 0.45, 3.4).rule == rule


def test_up_to_v0_9_0_the_held_memory_shrinks_the_kv_cache() -> None:
    # v0.9.0: "available_kv_cache_memory = (total_gpu_memory *
    # self.cache_config.gpu_memory_utilization - peak_memory)" with the other process's memory
    # inside peak_memory
    alone = estimate(_engine("0.9.0", utilization=0.7), CARD)
    beside = estimate(_engine("0.9.0", utilization=0.7), replace(CARD, held_gib=1.0))
    assert beside.non_torch_gib == pytest.approx(alone.non_torch_gib + 1.0)
    assert beside.kv_cache_gib == pytest.approx(alone.kv_cache_gib - 1.0)
    assert beside.starts and beside.held is not None and beside.held.rule == "charged"


def test_two_equal_instances_fail_on_v0_9_0_and_start_from_v0_9_1() -> None:
    # whichever starts second finds the other holding its share: v0.9.0 charges it and has no
    # KV memory left ("No available memory for the cache blocks", vllm-project/vllm#19125).
    # Kubernetes does not order the pods, so either may be the second: both are judged so.
    # From v0.9.1 each instance is sized from its own snapshot.
    (first, second), left = estimate_gpu(CARD, [_engine("0.9.0"), _engine("0.9.0")])
    assert first.failure == second.failure == "no_cache_memory"
    assert left == pytest.approx(CARD.visible_gib * 0.1)
    (first, second), _ = estimate_gpu(CARD, [_engine("0.9.1"), _engine("0.9.1")])
    assert first.starts and second.starts
    assert second.kv_cache_tokens == first.kv_cache_tokens


def test_from_v0_9_1_too_little_free_memory_refuses_the_start() -> None:
    engine = _engine("0.19.1", utilization=0.9)
    refused = estimate(engine, replace(CARD, held_gib=1.0))
    assert refused.failure == "held_memory" and refused.max_model_len_fit == 0
    # the highest utilization that starts beside it: free / total, in hundredths
    assert refused.min_utilization is not None and refused.min_utilization <= 0.86
    alone = estimate(replace(engine, gpu_memory_utilization=0.86), CARD)
    beside = estimate(replace(engine, gpu_memory_utilization=0.86), replace(CARD, held_gib=1.0))
    assert beside.starts and beside.kv_cache_tokens == alone.kv_cache_tokens


def test_v0_runs_out_of_memory_allocating_a_cache_that_does_not_fit() -> None:
    held = held_memory(_version("0.7.2"), 7.56, 0.9, 1.0)
    assert held.rule == "oom" and held.refused and held.max_utilization == 0.86
    assert estimate(_engine("0.7.2", 0.9), replace(CARD, held_gib=1.0)).failure == "held_memory"


def test_explain_names_the_held_memory_rule() -> None:
    engine = _engine("0.9.0")
    est = estimate(engine, replace(CARD, held_gib=1.0))
    line = next(s for s in steps(engine, est) if s.name == "held by others")
    assert "own non-torch memory" in line.arithmetic and line.value.startswith("1.00")


def _desktop_warnings(tag: str, **model: Any) -> list[str]:
    values = {
        "image": {"tag": tag},
        "gpu": {"profile": "RTX 5080"},
        "model": model,
    }
    report = check_values(values)
    return [f.problem.message for f in report.findings if f.rule == "desktop"]


def test_the_desktop_warning_follows_the_release() -> None:
    # v0.19.1 refuses: the utilization must leave the desktop's memory free
    (message,) = _desktop_warnings("v0.19.1", gpuMemoryUtilization=0.97)
    assert "refuses" in message
    assert _desktop_warnings("v0.19.1", gpuMemoryUtilization=0.9) == []
    # v0.9.0 never refuses; it counts the desktop as its own memory, which matters only when
    # the KV cache is tight
    assert _desktop_warnings("v0.9.0", gpuMemoryUtilization=0.97, maxModelLen=2048) == []
    (tight,) = _desktop_warnings("v0.9.0", gpuMemoryUtilization=0.9, maxModelLen=16384)
    assert "counts memory other processes hold as its own" in tight


def _case(**fields: object) -> dict[str, object]:
    return {
        "id": "t",
        "source": "test",
        "model": SMALL,
        "gpu": "RTX 4060 Ti 8GB",
        "vllm_version": "0.9.0",
        "outcome": "failed_kv_check",
        **fields,
    }


def test_the_replay_reads_memory_held_gib() -> None:
    profiles = load_profiles()
    plain = evaluate_case(_case(), profiles).record
    assert plain["verdict"] == "start" and plain["assumed"]["memory_held_gib"] is None
    shared = evaluate_case(_case(memory_held_gib=5.5), profiles).record
    assert shared["verdict"] == "fail" and shared["failure"] == "no_cache_memory"
    assert shared["assumed"]["memory_held_gib"] == 5.5
    assert shared["assumed"]["memory_held_rule"] == "charged"
    later = evaluate_case(_case(memory_held_gib=4.0, vllm_version="0.19.1"), profiles).record
    assert later["failure"] == "held_memory"


def test_the_replay_reads_the_mxfp4_backend(tmp_path: Path) -> None:
    case = _case(model="openai/gpt-oss-20b", gpu="H100", vllm_version="0.11.0", outcome="started")
    cases = tmp_path / "c.jsonl"
    cases.write_text(
        "\n".join(
            json.dumps({**case, "id": n, **extra})
            for n, extra in enumerate(
                ({}, {"mxfp4_backend": "triton"}, {"mxfp4_backend": "cutlass"})
            )
        )
    )
    by_rule, logged, bad = run(cases)["cases"]
    assert by_rule["assumed"]["mxfp4_backend"] == "marlin"
    assert by_rule["assumed"]["mxfp4_backend_from"] == "release and card"
    assert logged["assumed"]["mxfp4_backend"] == "triton"
    assert logged["assumed"]["mxfp4_backend_from"] == "case"
    assert logged["weights_gib"] < by_rule["weights_gib"]
    assert bad["verdict"] is None and "mxfp4_backend 'cutlass'" in bad["reason"]


def test_an_instance_archetype_is_started_beside_the_shared_server() -> None:
    # the instance starts after the server, which holds its share of the card: v0.9.0 counts
    # that share as the instance's own memory, v0.9.1+ sizes the instance on its own
    from archon.values import load_values, merge

    def findings(tag: str) -> list[tuple[str, str, str]]:
        values = merge(
            load_values([]),
            {
                "image": {"tag": tag},
                "gpu": {"profile": "RTX 4090"},
                "model": {"gpuMemoryUtilization": 0.8},
                "archetypes": [
                    {
                        "name": "roc",
                        "mode": "instance",
                        "systemPrompt": "route",
                        "instance": {
                            "model": {
                                "name": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
                                "maxModelLen": 4096,
                                "gpuMemoryUtilization": 0.12,
                            }
                        },
                    }
                ],
            },
        )
        report = check_values(values)
        return [(f.level, f.problem.key, f.problem.message) for f in report.findings]

    old = [f for f in findings("v0.9.0") if f[1].startswith("archetypes[0]")]
    assert any(level == "FAIL" and "roc" in message for level, _, message in old)
    assert not [f for f in findings("v0.19.1") if f[1].startswith("archetypes[0]")]


def test_every_instance_is_sized_as_if_it_started_last() -> None:
    # a small instance listed after a large one is no better off: on v0.9.0 each is charged
    # with everything the others hold, whatever the order of the list
    big, small = _engine("0.9.0", 0.6), _engine("0.9.0", 0.3)
    forward, _ = estimate_gpu(CARD, [big, small])
    backward, _ = estimate_gpu(CARD, [small, big])
    assert [e.held.held_gib for e in forward if e.held] == pytest.approx(
        [0.3 * CARD.visible_gib, 0.6 * CARD.visible_gib]
    )
    assert [e.kv_cache_tokens for e in forward] == [e.kv_cache_tokens for e in backward[::-1]]


def test_the_desktop_session_feeds_the_held_memory() -> None:
    desktop = replace(CARD, desktop_gib=1.0)
    (alone,), _ = estimate_gpu(CARD, [_engine("0.19.1", 0.9)])
    (beside,), left = estimate_gpu(desktop, [_engine("0.19.1", 0.9)])
    assert alone.starts and beside.failure == "held_memory"
    assert beside.held is not None and beside.held.held_gib == pytest.approx(1.0)
    assert left == pytest.approx(CARD.visible_gib * 0.1 - 1.0)


def _council(tag: str, server: float, embed: float = 0.10) -> Any:
    from archon.values import load_values, merge

    instance = {
        "name": "embed",
        "mode": "instance",
        "systemPrompt": "embed",
        "instance": {
            "model": {
                "name": "Qwen/Qwen3-Embedding-0.6B",
                "runner": "pooling",
                "maxModelLen": 1024,
                "gpuMemoryUtilization": embed,
            }
        },
    }
    values = merge(
        load_values([]),
        {
            "image": {"tag": tag},
            "gpu": {"profile": "RTX 5080", "nodeCapacity": 2},
            "model": {"gpuMemoryUtilization": server, "maxModelLen": 4096},
            "archetypes": [instance],
        },
    )
    return check_values(values)


def test_shares_over_the_ceiling_are_the_only_sharing_finding() -> None:
    report = _council("v0.19.1", 0.90, embed=0.12)
    fails = [f.problem for f in report.findings if f.level == "FAIL"]
    assert [p.key for p in fails] == ["archetypes"]
    assert "= 1.02" in fails[0].message
    # no per-instance "set ... <= 0.09" beside it: that share could not even load the weights
    assert not any("gpuMemoryUtilization <=" in p.fix for p in report.problems)


def test_a_suggested_utilization_is_one_that_starts() -> None:
    # v0.19.1 beside a desktop session: the cap that leaves the desktop's memory free is offered
    # only if the instance starts there (weights, activation and a KV cache within it)
    from archon.preflight.memory import held_memory
    from archon.preflight.report import _held_fix

    engine = _engine("0.19.1", 0.9)
    profile = load_profiles().find("RTX 4060 Ti 8GB")
    roomy = held_memory(engine.version, profile.visible_gib, 0.9, 1.0)
    assert _held_fix(engine, roomy, profile, "x").startswith(
        f"set model.gpuMemoryUtilization <= {roomy.max_utilization:.2f}"
    )
    crowded = held_memory(engine.version, profile.visible_gib, 0.9, profile.visible_gib - 0.5)
    assert crowded.max_utilization > 0
    assert _held_fix(engine, crowded, profile, "x").startswith("no utilization starts it")


def test_on_v0_9_0_no_share_is_safe_from_the_others() -> None:
    # v0.9.0 charges what the other instance holds, whichever starts last; the fix is not a
    # higher utilization that would push the sum over the ceiling
    report = _council("v0.9.0", 0.80, embed=0.12)
    memory = [f.problem for f in report.findings if f.rule == "memory"]
    assert memory and all("v0.9.1+" in p.fix for p in memory)
    assert not any("gpuMemoryUtilization 0.9" in p.fix for p in memory)
