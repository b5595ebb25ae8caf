"""`archon bench preflight`: replay recorded vLLM start-ups through the memory model.

Each case (one JSON object a line) gives the settings a real vLLM start-up used and what its log
printed. The memory model predicts the same figures from the settings alone; the summary says
how far off it is. Cases the model cannot evaluate (unknown model without config, unknown GPU
without a total) get `"verdict": null` and a reason; nothing here raises on a bad case.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from archon.errors import UsageError
from archon.preflight.catalog import ModelSpec, load_catalog
from archon.preflight.memory import BLOCK_SIZE, GIB, Engine, GpuBudget, estimate
from archon.preflight.parallel import parse_partition
from archon.preflight.profiles import GpuProfile, ProfileSet, load_profiles
from archon.preflight.versions import VllmVersion

# The image Archon deploys; cases that do not say their vLLM version (and give no date) are
# read as this release.
DEFAULT_VERSION = "0.19.1"

# vLLM releases by date, to read an undated case's era from the date in its `source` field
# (GitHub release dates; only the accounting boundaries matter: 0.6.4, 0.8.0, 0.18.0, 0.20.0).
RELEASES = (
    ("2024-01-31", "0.3.0"),
    ("2024-03-28", "0.4.0"),
    ("2024-06-11", "0.5.0"),
    ("2024-09-05", "0.6.0"),
    ("2024-11-15", "0.6.4"),
    ("2025-01-27", "0.7.0"),
    ("2025-03-18", "0.8.0"),
    ("2025-05-15", "0.9.0"),
    ("2025-07-24", "0.10.0"),
    ("2025-10-02", "0.11.0"),
)
_DATE = re.compile(r"(20\d\d-\d\d-\d\d)")

# Targets from the issue: median / p90 relative KV-token error, weights error, verdicts.
TARGET_KV_MEDIAN = 0.05
TARGET_KV_P90 = 0.15
TARGET_WEIGHTS = 0.03


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def version_for_case(case: dict[str, Any]) -> tuple[VllmVersion, str]:
    """The case's vLLM version and where it came from: 'case', 'source date' or 'default'."""
    parsed = VllmVersion.parse(case.get("vllm_version"))
    if parsed is not None:
        return parsed, "case"
    match = _DATE.search(str(case.get("source") or ""))
    if match:
        era = RELEASES[0][1]
        for date, version in RELEASES:
            if date <= match.group(1):
                era = version
        found = VllmVersion.parse(era)
        assert found is not None
        return found, "source date"
    default = VllmVersion.parse(DEFAULT_VERSION)
    assert default is not None
    return default, "default"


def _profile_for(gpu: str, profiles: ProfileSet) -> GpuProfile | None:
    candidates = [gpu]
    for sep in (" (", " - ", ",", ":"):
        if sep in gpu:
            candidates.append(gpu.split(sep, 1)[0])
    for text in candidates:
        profile = profiles.get(text.strip())
        if profile is not None:
            return profile
    return None


def stage_gpus_for_case(case: dict[str, Any], profiles: ProfileSet) -> tuple[list[GpuBudget], str]:
    """The cards of a heterogeneous pipeline (`gpus`: one {gpu, gpu_total_gib} per stage), or
    ([], "") when the case runs on one kind of card, or ([], reason) when a card is unknown."""
    entries = case.get("gpus")
    if not entries:
        return [], ""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return [], "gpus is not a list of {gpu, gpu_total_gib}"
    budgets = []
    for entry in entries:
        budget, how = gpu_for_case(entry, profiles)
        if budget is None:
            return [], how
        budgets.append(budget)
    return budgets, "case" if all(e.get("gpu_total_gib") for e in entries) else "profile"


def _partition(value: Any) -> tuple[int, ...] | None:
    """`pp_layer_partition` as a list of layer counts or vLLM's "16,32" string."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return tuple(int(v) for v in value)
    return parse_partition(str(value))


def gpu_for_case(case: dict[str, Any], profiles: ProfileSet) -> tuple[GpuBudget | None, str]:
    """(budget, how the total was chosen) or (None, reason)."""
    name = str(case.get("gpu") or "")
    total = _num(case.get("gpu_total_gib"))
    profile = _profile_for(name, profiles) if name else None
    bandwidth = profile.bandwidth_gbs if profile else None
    label = profile.name if profile else name
    arch = profile.arch if profile else ""
    spec_sheet = str(case.get("gpu_total_source") or "") == "card spec"
    if total is not None and total > 0 and not (spec_sheet and profile is not None):
        # the case's total is what vLLM saw (WSL really reports 8.00 GiB for an 8 GB card, so a
        # printed whole number is taken as given); a spec-sheet size is not what CUDA reports
        # (the driver keeps some), so a known card's profile wins over it
        return GpuBudget(label, total, bandwidth, arch=arch), "case"
    if profile is not None:
        return GpuBudget.of(profile), "profile"
    return None, f"unknown GPU {name!r} and no gpu_total_gib"


@dataclass
class CaseResult:
    record: dict[str, Any]
    kv_error: float | None = None
    weights_error: float | None = None
    verdict_ok: bool | None = None


def _outcome(case: dict[str, Any]) -> str | None:
    outcome = str(case.get("outcome") or "")
    if outcome == "started":
        return "start"
    if outcome.startswith("failed"):
        return "fail"
    return None


def evaluate_case(
    case: dict[str, Any], profiles: ProfileSet, models: dict[str, ModelSpec] | None = None
) -> CaseResult:
    record: dict[str, Any] = {
        "id": case.get("id"),
        "model": case.get("model"),
        "gpu": case.get("gpu"),
        "family": None,
        **UNEVALUATED,
    }
    reported = {
        key: case.get(key)
        for key in (
            "weights_gib",
            "non_torch_gib",
            "activation_peak_gib",
            "kv_cache_gib",
            "gpu_blocks",
            "kv_cache_tokens",
            "estimated_max_model_len",
        )
    }
    reported["outcome"] = case.get("outcome")
    record["reported"] = reported
    name = str(case.get("model") or "")
    spec = (models or {}).get(name) or load_catalog().get(name)
    if spec is None:
        record["reason"] = f"unknown model {name!r} (not in the catalog, no config given)"
        return CaseResult(record)
    record["family"] = spec.family
    stage_gpus, stages_how = stage_gpus_for_case(case, profiles)
    gpu: GpuBudget | None
    if stage_gpus:
        gpu, gpu_how = stage_gpus[0], stages_how
    elif stages_how:
        record["reason"], record["no_card"] = stages_how, True
        return CaseResult(record)
    else:
        gpu, gpu_how = gpu_for_case(case, profiles)
    if gpu is None:
        record["reason"], record["no_card"] = gpu_how, True
        return CaseResult(record)
    version, version_how = version_for_case(case)
    # the engine the log shows ("Initializing a V0 LLM engine", VLLM_USE_V1=0 on 0.8-0.10)
    # wins over the release's default
    chosen = str(case.get("engine") or "")
    if chosen not in ("", "v0", "v1"):
        record["reason"] = f"engine {chosen!r} is not v0 or v1"
        return CaseResult(record)
    if chosen:
        version = version.with_engine(chosen)
    # memory another process held on the card when this instance started (a first vLLM, a
    # desktop session): the release decides whether it shrinks the KV cache or stops the start
    held = max(0.0, _num(case.get("memory_held_gib")) or 0.0)
    if held:
        gpu = replace(gpu, held_gib=held)
        stage_gpus = [replace(g, held_gib=held) for g in stage_gpus]
    # the MXFP4 backend the log shows ("Using Marlin backend", or printed weights that only one
    # layout explains) wins over vLLM's choice by release and card
    backend = str(case.get("mxfp4_backend") or "")
    if backend not in ("", "marlin", "triton"):
        record["reason"] = f"mxfp4_backend {backend!r} is not marlin or triton"
        return CaseResult(record)
    util = _num(case.get("gpu_memory_utilization")) or 0.9
    tp = int(_num(case.get("tensor_parallel_size")) or 1)

    def opt_int(key: str) -> int | None:
        value = _num(case.get(key))
        return int(value) if value else None

    engine = Engine(
        model=spec,
        version=version,
        gpu_memory_utilization=util,
        max_model_len=opt_int("max_model_len"),
        max_num_seqs=opt_int("max_num_seqs"),
        max_num_batched_tokens=opt_int("max_num_batched_tokens"),
        enforce_eager=bool(case.get("enforce_eager")),
        kv_cache_dtype=str(case.get("kv_cache_dtype") or "auto"),
        tensor_parallel_size=tp,
        # the log says which top-k/top-p sampler ran ("Using FlashInfer for top-p & top-k
        # sampling"); a case that does not say keeps the native one
        flashinfer_sampler=case.get("flashinfer_sampler") is True,
        pipeline_parallel_size=int(_num(case.get("pipeline_parallel_size")) or 1),
        pp_layer_partition=_partition(case.get("pp_layer_partition")),
        data_parallel_size=int(_num(case.get("data_parallel_size")) or 1),
        expert_parallel=case.get("enable_expert_parallel") is True,
        mxfp4_backend=backend,
    )
    est = estimate(engine, gpu, stage_gpus=stage_gpus)
    verdict = "start" if est.starts else "fail"
    record.update(
        {
            "verdict": verdict,
            "assumed": {
                "vllm_version": str(version),
                "version_from": version_how,
                "gpu_total_gib": round(gpu.visible_gib, 2),
                "gpu_total_from": gpu_how,
                "gpu_memory_utilization": util,
                "max_model_len": engine.model_len,
                "max_num_seqs": est.max_num_seqs,
                "max_num_batched_tokens": est.max_num_batched_tokens,
                "engine": est.engine,
                "engine_from": "case" if chosen else "release",
                "tensor_parallel_size": tp,
                "pipeline_parallel_size": engine.pipeline_parallel_size,
                "data_parallel_size": engine.data_parallel_size,
                "expert_parallel_size": est.expert_parallel_size,
                "mxfp4_backend": est.mxfp4_backend or None,
                "mxfp4_backend_from": ("case" if backend else "release and card")
                if est.mxfp4_backend
                else None,
                "memory_held_gib": held or None,
                "memory_held_rule": est.held.rule if est.held else None,
            },
            "weights_gib": round(est.weights_gib, 2),
            "activation_gib": round(est.activation_gib, 2),
            "non_torch_gib": round(est.non_torch_gib, 2),
            "cudagraph_gib": round(est.cudagraph_gib, 2) if est.cudagraph_in_budget else 0.0,
            "kv_cache_gib": round(est.kv_cache_gib, 2),
            "kv_cache_tokens": est.kv_cache_tokens,
            "gpu_blocks": est.gpu_blocks,
            "failure": est.failure,
            "estimated_max_model_len": est.max_model_len_fit,
        }
    )
    if est.stages:
        record["stages"] = est.stages
        record["kv_check"] = est.kv_check
    result = CaseResult(record)
    expected = _outcome(case)
    if expected is not None:
        result.verdict_ok = expected == verdict
        record["verdict_ok"] = result.verdict_ok
    # reported KV tokens: printed, else blocks x 16, else KV GiB / bytes per token
    tokens = _num(case.get("kv_cache_tokens"))
    source = "kv_cache_tokens"
    if tokens is None and (_num(case.get("gpu_blocks")) or 0) > 0:
        tokens, source = float(case["gpu_blocks"]) * BLOCK_SIZE, "gpu_blocks x 16"
    kv_gib = _num(case.get("kv_cache_gib"))
    if tokens is None and kv_gib is not None and kv_gib > 0:
        per_block = est.kv_bytes_per_token * BLOCK_SIZE
        tokens = math.floor(kv_gib * GIB / per_block) * BLOCK_SIZE
        source = "kv_cache_gib / bytes per token"
    if tokens:
        result.kv_error = abs(est.kv_cache_tokens - tokens) / tokens
        record["errors"] = {
            "kv_tokens_reported": int(tokens),
            "kv_tokens_from": source,
            "kv_tokens_rel": round(result.kv_error, 4),
        }
    weights = _num(case.get("weights_gib"))
    if weights:
        result.weights_error = abs(est.weights_gib - weights) / weights
        record.setdefault("errors", {})["weights_rel"] = round(result.weights_error, 4)
    return result


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def by_family(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    """The same figures per architecture family (dense, moe, mla, sliding-window...)."""
    families: dict[str, list[CaseResult]] = {}
    for result in results:
        families.setdefault(str(result.record.get("family") or "unknown"), []).append(result)
    out: dict[str, dict[str, Any]] = {}
    for family, members in sorted(families.items()):
        kv = [r.kv_error for r in members if r.kv_error is not None]
        weights = [r.weights_error for r in members if r.weights_error is not None]
        judged = [r for r in members if r.verdict_ok is not None]
        median, p90 = _quantile(kv, 0.5), _quantile(kv, 0.9)
        out[family] = {
            "cases": len(members),
            "evaluated": sum(1 for r in members if r.record.get("verdict") is not None),
            "verdicts": f"{sum(1 for r in judged if r.verdict_ok)}/{len(judged)}",
            "kv_tokens_error_cases": len(kv),
            "kv_tokens_error_median_pct": None if median is None else round(100 * median, 2),
            "kv_tokens_error_p90_pct": None if p90 is None else round(100 * p90, 2),
            "weights_error_median_pct": (
                None if not weights else round(100 * (_quantile(weights, 0.5) or 0.0), 2)
            ),
        }
    return out


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    kv = [r.kv_error for r in results if r.kv_error is not None]
    weights = [r.weights_error for r in results if r.weights_error is not None]
    judged = [r for r in results if r.verdict_ok is not None]
    right = sum(1 for r in judged if r.verdict_ok)

    def pct(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 2)

    kv_median, kv_p90 = _quantile(kv, 0.5), _quantile(kv, 0.9)
    weights_median, weights_max = _quantile(weights, 0.5), (max(weights) if weights else None)
    return {
        "cases": len(results),
        "evaluated": sum(1 for r in results if r.record.get("verdict") is not None),
        "skipped": sum(1 for r in results if r.record.get("verdict") is None),
        "skipped_no_card": sum(1 for r in results if r.record.get("no_card")),
        "verdict_cases": len(judged),
        "verdict_correct": right,
        "verdict_accuracy": round(right / len(judged), 4) if judged else None,
        "verdict_misses": [r.record["id"] for r in judged if not r.verdict_ok],
        "kv_tokens_error_cases": len(kv),
        "kv_tokens_error_median_pct": pct(kv_median),
        "kv_tokens_error_p90_pct": pct(kv_p90),
        "kv_tokens_error_max_pct": pct(max(kv) if kv else None),
        "weights_error_cases": len(weights),
        "weights_error_median_pct": pct(weights_median),
        "weights_error_max_pct": pct(weights_max),
        "by_family": by_family(results),
        "targets": {
            "kv_median_pct": 100 * TARGET_KV_MEDIAN,
            "kv_p90_pct": 100 * TARGET_KV_P90,
            "weights_pct": 100 * TARGET_WEIGHTS,
            "kv_median_met": kv_median is not None and kv_median <= TARGET_KV_MEDIAN,
            "kv_p90_met": kv_p90 is not None and kv_p90 <= TARGET_KV_P90,
            "weights_met": weights_max is not None and weights_max <= TARGET_WEIGHTS,
            "verdicts_met": bool(judged) and right == len(judged),
            # a case whose log names no card and prints no total cannot be replayed by any
            # model; every other case must be (an unknown model or a broken record is a miss)
            "evaluated_met": bool(results)
            and all(r.record.get("verdict") or r.record.get("no_card") for r in results),
        },
        "reported_tokens_note": "reported KV tokens are the printed kv_cache_tokens, else "
        "gpu_blocks x 16, else kv_cache_gib / predicted bytes per token (each record says which)",
    }


def read_cases(path: str | Path) -> list[dict[str, Any]]:
    """One JSON object a line; a line that is not an object becomes a case with an error."""
    file = Path(path)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(
            "file not found",
            key="--cases",
            source=str(path),
            fix="pass a JSONL file of vLLM start-up cases",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"cannot read ({exc.__class__.__name__})",
            key="--cases",
            source=str(path),
            fix="pass a UTF-8 JSONL file",
        ) from None
    cases: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            data = {"id": f"line {number}", "_error": f"invalid JSON: {exc.msg}"}
        if not isinstance(data, dict):
            data = {"id": f"line {number}", "_error": "not a JSON object"}
        cases.append(data)
    return cases


# The fields `archon bench preflight --output json` promises on every record (null = not known).
UNEVALUATED: dict[str, Any] = {
    "verdict": None,
    "weights_gib": None,
    "kv_cache_gib": None,
    "kv_cache_tokens": None,
}


def run(path: str | Path, *, profiles: ProfileSet | None = None) -> dict[str, Any]:
    profiles = profiles or load_profiles()
    results = []
    for case in read_cases(path):
        if "_error" in case:
            results.append(CaseResult({"id": case["id"], **UNEVALUATED, "reason": case["_error"]}))
            continue
        try:
            results.append(evaluate_case(case, profiles))
        except (ValueError, TypeError, KeyError, ZeroDivisionError) as exc:
            # a malformed case must not stop the replay; say what was wrong with it
            results.append(
                CaseResult(
                    {
                        "id": case.get("id"),
                        **UNEVALUATED,
                        "reason": f"cannot evaluate: {exc.__class__.__name__}: {exc}",
                    }
                )
            )
    return {"cases": [r.record for r in results], "summary": summarize(results)}
