"""The preflight verdict: compatibility findings plus the memory estimate, as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archon.errors import Problem, UsageError
from archon.preflight.archetypes import SHARED_GPU_CEILING
from archon.preflight.archetypes import instances as archetype_instances
from archon.preflight.archetypes import lora_slots as archetype_lora_slots
from archon.preflight.catalog import (
    ModelSpec,
    load_catalog,
    load_model_config,
    normalize_quantization,
    weights_from_safetensors_index,
    with_weights,
)
from archon.preflight.compat import ONLINE_QUANTIZATIONS, Finding, Setup, evaluate
from archon.preflight.memory import (
    BLOCK_SIZE,
    GIB,
    Engine,
    GpuBudget,
    MemoryEstimate,
    estimate,
    estimate_gpu,
)
from archon.preflight.profiles import GpuProfile, ProfileSet, load_profiles
from archon.preflight.settings import Settings, read_settings
from archon.preflight.versions import VllmVersion
from archon.values import get_path

CONCURRENCY_WARN = 1.5  # fewer full-length requests than this in flight is a cramped server


@dataclass
class PreflightReport:
    verdict: str  # PASS | WARN | FAIL
    gpu: str
    model: str
    image: str
    findings: list[Finding] = field(default_factory=list)
    estimate: MemoryEstimate | None = None
    profile: GpuProfile | None = None
    spec: ModelSpec | None = None
    version: str = ""
    notes: list[str] = field(default_factory=list)
    instances: list[dict[str, Any]] = field(default_factory=list)  # archetype instances

    @property
    def problems(self) -> list[Problem]:
        """Every finding, FAIL and WARN, in order (`findings` carries the level)."""
        return [f.problem for f in self.findings]

    @property
    def failures(self) -> list[Problem]:
        """Only the FAIL-level findings: what must change before deploying."""
        return [f.problem for f in self.findings if f.level == "FAIL"]

    def as_dict(self) -> dict[str, Any]:
        est = self.estimate
        figures: dict[str, Any] = est.as_dict() if est else {}
        figures.pop("gpu", None)
        return {
            "verdict": self.verdict,
            "gpu": self.gpu,
            "gpu_memory_mib": self.profile.memory_mib if self.profile else None,
            "model": self.model,
            "image": self.image,
            "vllm_version": self.version,
            "weights_estimated": bool(self.spec and self.spec.weights_estimated),
            **{
                key: figures.get(key)
                for key in (
                    "weights_gib",
                    "activation_gib",
                    "non_torch_gib",
                    "cudagraph_gib",
                    "cudagraph_in_budget",
                    "lora_gib",
                    "kv_cache_gib",
                    "kv_cache_tokens",
                    "gpu_blocks",
                    "kv_bytes_per_token",
                    "max_concurrency",
                    "max_model_len",
                    "max_model_len_fit",
                    "min_gpu_memory_utilization",
                    "decode_tokens_per_s_max",
                    "gpu_total_gib",
                    "usable_gib",
                    "gpu_memory_utilization",
                    "engine",
                    "max_num_seqs",
                    "max_num_batched_tokens",
                )
            },
            "problems": [f.as_dict() for f in self.findings],
            "instances": self.instances,
            "notes": self.notes,
        }


def _verdict(findings: Iterable[Finding]) -> str:
    levels = {f.level for f in findings}
    return "FAIL" if "FAIL" in levels else "WARN" if "WARN" in levels else "PASS"


def _gib(value: float) -> str:
    return f"{value:.2f} GiB"


def _round_down(length: int) -> int:
    step = 1024 if length >= 4096 else 256 if length >= 512 else BLOCK_SIZE
    return max(BLOCK_SIZE, length // step * step)


def _smallest_card(engine: Engine, profiles: ProfileSet, like: GpuProfile) -> GpuProfile | None:
    """The smallest card of the same vendor and class (desktop or data-center) that works."""
    fitting = [
        p
        for p in profiles
        if p.vendor == like.vendor
        and bool(p.desktop_mib) == bool(like.desktop_mib)
        and estimate(engine, GpuBudget(p.name, p.visible_gib)).starts
    ]
    return min(fitting, key=lambda p: p.memory_mib, default=None)


def _memory_findings(
    est: MemoryEstimate, engine: Engine, profile: GpuProfile, profiles: ProfileSet
) -> list[Finding]:
    found: list[Finding] = []

    def add(level: str, key: str, message: str, fix: str, value: Any, rule: str) -> None:
        found.append(Finding(level, Problem(key, message, fix, value), rule))

    card = f"{profile.name} ({profile.memory_mib} MiB)"
    bigger = _smallest_card(engine, profiles, profile)
    card_fix = (
        f"use a {round(bigger.memory_mib / 1024)} GB card such as {bigger.name}"
        if bigger
        else "use a larger card or more GPUs"
    )
    if est.failure == "oom_weights":
        add(
            "FAIL",
            "model.name",
            f"weights take {_gib(est.weights_gib)} per GPU, more than {card} holds "
            f"({_gib(est.gpu_total_gib)} visible)",
            f"choose a smaller or 4-bit model, or {card_fix}",
            engine.model.name,
            "memory",
        )
        return found
    if est.failure in ("no_cache_memory", "kv_too_small"):
        need = engine.model_len * est.kv_bytes_per_token / GIB
        budget = GpuBudget(profile.name, profile.visible_gib)
        fixes = []
        if est.max_model_len_fit >= BLOCK_SIZE:
            fixes.append(f"set model.maxModelLen <= {_round_down(est.max_model_len_fit)}")
        fp8 = replace(engine, kv_cache_dtype="fp8")
        if engine.kv_cache_dtype == "auto" and estimate(fp8, budget).starts:
            fixes.append("model.kvCacheDtype fp8")
        if est.min_utilization is not None and est.min_utilization <= 0.95:
            fixes.append(f"model.gpuMemoryUtilization {est.min_utilization:.2f}")
        for seqs in (64, 32, 16, 8):  # the profile run's sampler pass scales with max_num_seqs
            fewer = replace(engine, max_num_seqs=seqs)
            if seqs < est.max_num_seqs and estimate(fewer, budget).starts:
                fixes.append(f"model.maxNumSeqs {seqs}")
                break
        fixes.append(card_fix)
        spent = [
            f"weights {_gib(est.weights_gib)}",
            f"activation {_gib(est.activation_gib)}",
            f"non-torch {_gib(est.non_torch_gib)}",
        ]
        if est.cudagraph_in_budget:
            spent.append(f"CUDA graphs {_gib(est.cudagraph_gib)}")
        if est.lora_gib:
            spent.append(f"LoRA {_gib(est.lora_gib)}")
        add(
            "FAIL",
            "model.maxModelLen",
            f"{engine.model_len} needs {_gib(need)} of KV cache, only "
            f"{_gib(max(0.0, est.kv_cache_gib))} left on {card} after {', '.join(spent)}",
            ", or ".join(fixes),
            engine.model_len,
            "memory",
        )
        return found
    if est.max_concurrency < CONCURRENCY_WARN:
        add(
            "WARN",
            "model.maxModelLen",
            f"the KV cache holds {est.kv_cache_tokens} tokens: {est.max_concurrency:.2f} "
            f"requests of {engine.model_len} tokens at once on {card}",
            f"set model.maxModelLen <= {_round_down(est.kv_cache_tokens * 2 // 3)} for 1.5x, "
            "or model.kvCacheDtype fp8",
            engine.model_len,
            "memory",
        )
    desktop_gib = profile.desktop_mib / 1024
    if desktop_gib and profile.visible_gib - desktop_gib < est.usable_gib:
        ceiling = (profile.visible_gib - desktop_gib) / profile.visible_gib
        add(
            "WARN",
            "model.gpuMemoryUtilization",
            f"{est.utilization} asks for {_gib(est.usable_gib)} free at start, but a desktop "
            f"session on {profile.name} typically holds {_gib(desktop_gib)}; vLLM refuses when "
            "free memory < utilization x total",
            f"set model.gpuMemoryUtilization <= {int(ceiling * 100) / 100:.2f}, or run the "
            "node headless",
            est.utilization,
            "desktop",
        )
    headroom = est.gpu_total_gib - est.usable_gib
    if not est.cudagraph_in_budget and est.cudagraph_gib > headroom:
        add(
            "WARN",
            "model.gpuMemoryUtilization",
            f"this vLLM captures CUDA graphs (~{_gib(est.cudagraph_gib)}) after sizing the KV "
            f"cache, outside the {est.utilization} budget, and only {_gib(headroom)} is left",
            "lower model.gpuMemoryUtilization or set model.enforceEager true",
            est.utilization,
            "graphs",
        )
    return found


def _archetype_findings(
    values: dict[str, Any],
    server: Settings,
    server_engine: Engine,
    profile: GpuProfile,
    profiles: ProfileSet,
    version: VllmVersion,
    report: PreflightReport,
) -> list[Finding]:
    """Instances beside the shared server: each must fit its own share, the shares must fit the
    card together, and the cluster must be able to place every GPU pod."""
    extra = archetype_instances(values)
    if not extra:
        return []
    found: list[Finding] = []
    engines = [replace(server_engine, name="server")]
    for instance in extra:
        prefix = f"archetypes[{instance.index}].instance.model"
        s = read_settings(instance.values, gpu=profile.name)
        found += [
            Finding("FAIL", replace(p, key=p.key.replace("model", prefix, 1)), "values")
            for p in s.problems
        ]
        if s.problems:
            continue
        spec = resolve_model(s.model)
        # The instance runs the same image on the same card, with its own model: the same rules.
        for finding in evaluate(setup_from_settings(s, profile, spec, version)):
            key = finding.problem.key.replace("model", prefix, 1)
            message = f"archetype {instance.name}: {finding.problem.message}"
            found.append(
                replace(finding, problem=replace(finding.problem, key=key, message=message))
            )
        engine = replace(engine_from_settings(s, spec, version), name=instance.name)
        engines.append(engine)
        est = estimate(engine, GpuBudget(profile.name, profile.visible_gib, profile.bandwidth_gbs))
        report.instances.append({"archetype": instance.name, **est.as_dict()})
        for finding in _memory_findings(est, engine, profile, profiles):
            if finding.rule == "desktop":  # judged once below, for all engines together
                continue
            key = finding.problem.key.replace("model", prefix, 1)
            message = f"archetype {instance.name}: {finding.problem.message}"
            fix = finding.problem.fix.replace("model.", f"{prefix}.")
            found.append(
                replace(
                    finding, problem=replace(finding.problem, key=key, message=message, fix=fix)
                )
            )

    pods = int(get_path(values, "replicaCount", 1) or 1) * server.gpu_count + sum(
        i.gpus for i in extra
    )
    capacity = int(get_path(values, "gpu.nodeCapacity", 1) or 1)
    if pods > capacity:
        found.append(
            Finding(
                "FAIL",
                Problem(
                    "gpu.nodeCapacity",
                    f"{capacity} but the server and {len(extra)} instance archetype(s) need "
                    f"{pods} GPU pods: the others stay Pending",
                    f"share the GPU (NVIDIA time-slicing) and set gpu.nodeCapacity >= {pods}, "
                    "or serve the instance archetypes with mode prompt or lora",
                    capacity,
                ),
                "sharing",
            )
        )
    shares = [(e.name, e.gpu_memory_utilization) for e in engines]
    total = sum(share for _, share in shares)
    spelled = " + ".join(f"{name} {share:.2f}" for name, share in shares)
    if total > SHARED_GPU_CEILING:
        found.append(
            Finding(
                "FAIL",
                Problem(
                    "archetypes",
                    f"the vLLM instances on {profile.name} claim {spelled} = {total:.2f} of "
                    f"the card, above {SHARED_GPU_CEILING}: the last one to start finds too "
                    "little free memory and exits",
                    "lower model.gpuMemoryUtilization or the instances' "
                    "instance.model.gpuMemoryUtilization, or serve some with mode prompt or lora",
                    round(total, 2),
                ),
                "sharing",
            )
        )
    else:
        desktop_gib = profile.desktop_mib / 1024
        if desktop_gib and total * profile.visible_gib > profile.visible_gib - desktop_gib:
            found.append(
                Finding(
                    "WARN",
                    Problem(
                        "archetypes",
                        f"the vLLM instances claim {spelled} = {total:.2f} of {profile.name}; "
                        f"with a desktop session holding {_gib(desktop_gib)} the last one "
                        "to start finds too little free memory",
                        "lower the utilizations or run the node headless",
                        round(total, 2),
                    ),
                    "desktop",
                )
            )
    return found


def setup_from_settings(
    s: Settings, profile: GpuProfile, spec: ModelSpec, version: VllmVersion
) -> Setup:
    return Setup(
        gpu=profile,
        model=spec,
        version=version,
        vendor_value=s.vendor,
        image=s.image,
        image_repository=s.image_repository,
        image_tag=s.image_tag,
        quantization_value=s.quantization,
        dtype=s.dtype,
        kv_cache_dtype=s.kv_cache_dtype,
        max_model_len=s.max_model_len or spec.max_positions,
        tensor_parallel_size=s.tensor_parallel_size,
        gpu_count=s.gpu_count,
        lora=s.max_loras > 0,
        rope_scaling=s.rope_scaling,
    )


def engine_from_settings(s: Settings, spec: ModelSpec, version: VllmVersion) -> Engine:
    return Engine(
        model=spec,
        version=version,
        gpu_memory_utilization=s.utilization,
        max_model_len=s.max_model_len,
        max_num_seqs=s.max_num_seqs,
        max_num_batched_tokens=s.max_num_batched_tokens,
        enforce_eager=s.enforce_eager,
        kv_cache_dtype=s.kv_cache_dtype,
        tensor_parallel_size=s.tensor_parallel_size,
        max_loras=s.max_loras,
        max_lora_rank=s.max_lora_rank,
    )


def resolve_model(
    name: str,
    *,
    model_config: str | Path | None = None,
    weights_gib: float | None = None,
    safetensors_index: str | Path | None = None,
) -> ModelSpec:
    spec = load_model_config(model_config, name=name) if model_config else None
    spec = spec or load_catalog().find(name)
    if weights_gib is not None:
        if weights_gib <= 0:
            raise UsageError(
                f"{weights_gib} is not a positive size",
                key="--weights-gib",
                fix="give the checkpoint size in GiB, e.g. --weights-gib 9.3",
            )
        spec = with_weights(spec, gib=weights_gib, source="--weights-gib")
    elif safetensors_index:
        spec = with_weights(
            spec,
            gb=weights_from_safetensors_index(safetensors_index),
            source=str(safetensors_index),
        )
    return spec


def check_values(
    values: dict[str, Any],
    *,
    gpu: str | None = None,
    source: str = "",
    profiles: ProfileSet | None = None,
    model_config: str | Path | None = None,
    weights_gib: float | None = None,
    safetensors_index: str | Path | None = None,
) -> PreflightReport:
    """Preflight merged chart values against a GPU profile.

    `gpu` overrides gpu.profile. Raises UsageError (exit 2) when no GPU is named, the GPU or the
    model is unknown; every other finding is in the report (verdict FAIL/WARN/PASS).
    """
    try:
        return _check_values(
            values,
            gpu=gpu,
            source=source,
            profiles=profiles,
            model_config=model_config,
            weights_gib=weights_gib,
            safetensors_index=safetensors_index,
        )
    except UsageError as exc:
        if exc.source or not source or exc.key.startswith("-"):  # flags are not in the file
            raise
        raise UsageError(exc.message, key=exc.key, source=source, fix=exc.fix) from exc


def _check_values(
    values: dict[str, Any],
    *,
    gpu: str | None,
    source: str,
    profiles: ProfileSet | None,
    model_config: str | Path | None,
    weights_gib: float | None,
    safetensors_index: str | Path | None,
) -> PreflightReport:
    s = read_settings(values, gpu=gpu)
    slots, rank = archetype_lora_slots(values)
    if slots and not s.max_loras:  # the chart derives --max-loras from the lora archetypes
        s.max_loras, s.max_lora_rank = slots, rank
    if not s.gpu_profile:
        raise UsageError(
            "not set",
            key="gpu.profile",
            source=source,
            fix="pass --gpu NAME or set gpu.profile (see `archon gpus`)",
        )
    profiles = profiles or load_profiles()
    profile = profiles.find(s.gpu_profile, key="--gpu" if gpu else "gpu.profile")
    spec = resolve_model(
        s.model,
        model_config=model_config,
        weights_gib=weights_gib,
        safetensors_index=safetensors_index,
    )
    written_quant = normalize_quantization(s.quantization)
    if spec.quantization == "none" and written_quant in ONLINE_QUANTIZATIONS:
        # Quantized while loading: the GPU holds the quantized size, estimated from the
        # parameter count (the checkpoint's listed size is its 16-bit size).
        spec = replace(spec, quantization=written_quant, weights_gb=None)
    version = VllmVersion.parse(s.image_tag) or VllmVersion.newest(s.image_tag)
    report = PreflightReport(
        verdict="PASS",
        gpu=profile.name,
        model=spec.name,
        image=s.image,
        profile=profile,
        spec=spec,
        version=str(version),
    )
    findings = [Finding("FAIL", replace(p, source=source), "values") for p in s.problems]
    setup = setup_from_settings(s, profile, spec, version)
    findings += [replace(f, problem=replace(f.problem, source=source)) for f in evaluate(setup)]
    if not s.problems:
        engine = engine_from_settings(s, spec, version)
        budget = GpuBudget(
            profile.name, profile.visible_gib, profile.bandwidth_gbs, profile.desktop_mib / 1024
        )
        (est,), _left = estimate_gpu(budget, [engine])
        report.estimate = est
        findings += [
            replace(f, problem=replace(f.problem, source=source))
            for f in _memory_findings(est, engine, profile, profiles)
        ]
        shared = _archetype_findings(values, s, engine, profile, profiles, version, report)
        findings += [replace(f, problem=replace(f.problem, source=source)) for f in shared]
    if spec.weights_estimated:
        report.notes.append(
            f"weights estimated from the parameter count "
            f"({spec.checkpoint_gb():.2f} GB); pass --weights-gib for exact figures"
        )
    report.findings = findings
    report.verdict = _verdict(findings)
    return report


def render_table(report: PreflightReport) -> str:
    lines = [f"preflight: {report.verdict}  {report.model} on {report.gpu} ({report.image})"]
    est = report.estimate
    if est is not None:
        rows = [
            ("GPU total (visible)", _gib(est.gpu_total_gib)),
            (f"usable (x {est.utilization})", _gib(est.usable_gib)),
            ("weights", _gib(est.weights_gib)),
            (
                f"activation peak ({est.max_num_batched_tokens} tok, {est.max_num_seqs} seqs)",
                _gib(est.activation_gib),
            ),
            ("non-torch", _gib(est.non_torch_gib)),
            (
                "CUDA graphs" + ("" if est.cudagraph_in_budget else " (outside budget)"),
                _gib(est.cudagraph_gib),
            ),
        ]
        if est.lora_gib:
            rows.append(("LoRA slots", _gib(est.lora_gib)))
        rows += [
            ("KV cache", _gib(est.kv_cache_gib)),
            ("KV cache tokens", f"{est.kv_cache_tokens} ({est.gpu_blocks} blocks of {BLOCK_SIZE})"),
            ("KV bytes per token", str(est.kv_bytes_per_token)),
            (f"max concurrency at {est.max_model_len}", f"{est.max_concurrency:.2f}x"),
            ("largest maxModelLen that fits", str(est.max_model_len_fit or "none")),
            (
                "lowest utilization that works",
                f"{est.min_utilization:.2f}" if est.min_utilization is not None else "none",
            ),
            (
                "decode ceiling (1 stream)",
                f"{est.decode_tokens_per_s:.0f} tok/s" if est.decode_tokens_per_s else "unknown",
            ),
        ]
        width = max(len(label) for label, _ in rows)
        lines += [f"  {label:<{width}}  {value}" for label, value in rows]
    for instance in report.instances:
        lines.append(
            f"  archetype {instance['archetype']} (own vLLM, x {instance['gpu_memory_utilization']}"
            f"): weights {_gib(instance['weights_gib'])}, KV cache {_gib(instance['kv_cache_gib'])}"
            f" = {instance['kv_cache_tokens']} tokens, {instance['max_concurrency']:.2f}x at "
            f"{instance['max_model_len']}"
        )
    for finding in report.findings:
        lines.append(f"{finding.level} {finding.problem.line()}")
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)
