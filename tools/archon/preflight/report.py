"""The preflight verdict: compatibility findings plus the memory estimate, as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from archon.errors import Problem, UsageError
from archon.preflight import hub
from archon.preflight.advice import Fix, needed_gib, round_down, suggest
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
    Engine,
    GpuBudget,
    HeldMemory,
    MemoryEstimate,
    estimate,
    estimate_gpu,
)
from archon.preflight.profiles import GpuProfile, ProfileSet, load_profiles
from archon.preflight.settings import Settings, read_settings
from archon.preflight.versions import (
    AUTO_MAX_MODEL_LEN,
    KV_CACHE_MEMORY_BYTES,
    V0_SELECTABLE,
    VllmVersion,
)
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
    fixes: list[Fix] = field(default_factory=list)  # single changes that make it fit
    engine: Engine | None = None

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
        figures: dict[str, Any] = {}
        if est is not None:
            figures = {
                **est.as_dict(),
                "kv_check": est.kv_check or None,
                "local_experts": est.local_experts or None,
            }
        return {
            "verdict": self.verdict,
            "gpu": self.gpu,
            "gpu_memory_mib": self.profile.memory_mib if self.profile else None,
            "model": self.model,
            "image": self.image,
            "vllm_version": self.version,
            "weights_estimated": bool(self.spec and self.spec.weights_estimated),
            "model_source": self.spec.origin if self.spec else None,
            "model_commit": (self.spec.commit or None) if self.spec else None,
            "weights_source": self.spec.weights_source if self.spec else None,
            "architecture": self.spec.family if self.spec else None,
            **{key: figures.get(key) for key in ESTIMATE_KEYS},
            "problems": [f.as_dict() for f in self.findings],
            "fixes": [f.as_dict() for f in self.fixes],
            "instances": self.instances,
            "notes": self.notes,
        }


# The estimate's figures in `archon preflight --output json` (null when there is no estimate).
ESTIMATE_KEYS = (
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
    "kv_needed_gib",
    "kv_cache_groups",
    "sliding_window",
    "sliding_window_layers",
    "max_model_len_auto",
    "kv_cache_memory_fixed",
    "memory_held_gib",
    "pipeline_parallel_size",
    "data_parallel_size",
    "expert_parallel_size",
    "local_experts",
    "stages",
    "kv_check",
    "mm_encoder",
    "mxfp4_backend",
)


def _verdict(findings: Iterable[Finding]) -> str:
    levels = {f.level for f in findings}
    return "FAIL" if "FAIL" in levels else "WARN" if "WARN" in levels else "PASS"


def _gib(value: float) -> str:
    return f"{value:.2f} GiB"


def _memory_findings(
    est: MemoryEstimate,
    engine: Engine,
    profile: GpuProfile,
    profiles: ProfileSet,
    fixes_out: list[Fix] | None = None,
    others_share: float = 0.0,
) -> list[Finding]:
    """`others_share`: the utilization the other instances on the card claim; a fix must keep
    the sum under the ceiling, and a different card changes every instance, not this one."""
    found: list[Finding] = []

    def add(level: str, key: str, message: str, fix: str, value: Any, rule: str) -> None:
        found.append(Finding(level, Problem(key, message, fix, value), rule))

    card = f"{profile.name} ({profile.memory_mib} MiB)"
    if est.failure is not None:
        # the fixes must fit beside what others hold
        budget = GpuBudget.of(profile, held_gib=est.held.held_gib if est.held else 0.0)
        fixes = suggest(engine, est, budget, profile, profiles)
        if others_share:
            fixes = [
                f
                for f in fixes
                if f.key
                and not (
                    f.key == "model.gpuMemoryUtilization"
                    and float(f.value) + others_share > SHARED_GPU_CEILING
                )
            ]
        if fixes_out is not None:
            fixes_out.extend(fixes)
        offered = [f"{f.change} (needs {needed_gib(f.estimate):.2f} GiB)" for f in fixes]
        if est.held is not None and est.held.charged_gib and others_share:
            offered.append("use a v0.9.1+ image, which does not count the others' memory")
        if others_share:
            offered.append("serve some archetypes with mode prompt or lora")
        elif not any(not f.key for f in fixes):
            offered.append("use a larger card or more GPUs")
        fix_text = ", or ".join(offered)
    if est.failure == "oom_weights":
        add(
            "FAIL",
            "model.name",
            f"weights take {_gib(est.weights_gib)} per GPU, more than {card} holds "
            f"({_gib(est.gpu_total_gib)} visible)",
            fix_text,
            engine.model.name,
            "memory",
        )
        return found
    if est.failure == "oom_kv_fixed":
        add(
            "FAIL",
            "model.extraArgs",
            f"--kv-cache-memory-bytes asks for {_gib(est.kv_cache_gib)} of KV cache on top of "
            f"{_gib(est.usable_gib - est.kv_cache_gib)} for weights, activation and graphs: "
            f"{_gib(est.usable_gib)}, more than {card} holds ({_gib(est.gpu_total_gib)})",
            f"lower --kv-cache-memory-bytes below "
            f"{_gib(max(0.0, est.gpu_total_gib - est.usable_gib + est.kv_cache_gib))}",
            est.kv_cache_gib,
            "memory",
        )
        return found
    if est.failure == "held_memory" and est.held is not None:
        held = est.held
        outcome = (
            "vLLM refuses to start when free memory < utilization x total"
            if held.rule == "refused"
            else "its KV cache does not fit beside it"
        )
        add(
            "FAIL",
            "model.gpuMemoryUtilization",
            f"{est.utilization} asks for {_gib(est.utilization * est.gpu_total_gib)} of "
            f"{card}, but other processes hold {_gib(held.held_gib)}: {outcome}",
            _held_fix(engine, held, profile, "lower what the others hold"),
            est.utilization,
            "memory",
        )
        return found
    if est.failure in ("no_cache_memory", "kv_too_small"):
        spent = [
            f"weights {_gib(est.weights_gib)}",
            f"activation {_gib(est.activation_gib)}",
            f"non-torch {_gib(est.non_torch_gib)}"
            + (
                f" (with {_gib(est.held.held_gib)} other processes hold, which this release "
                "counts as its own)"
                if est.held is not None and est.held.charged_gib
                else ""
            ),
        ]
        if est.cudagraph_in_budget:
            spent.append(f"CUDA graphs {_gib(est.cudagraph_gib)}")
        if est.lora_gib:
            spent.append(f"LoRA {_gib(est.lora_gib)}")
        add(
            "FAIL",
            "model.maxModelLen",
            f"{engine.model_len} needs {_gib(est.kv_needed_gib)} of KV cache, only "
            f"{_gib(max(0.0, est.kv_cache_gib))} left on {card} after {', '.join(spent)}",
            fix_text,
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
            f"set model.maxModelLen <= {round_down(est.max_model_len_fit * 2 // 3)} for 1.5x, "
            "or model.kvCacheDtype fp8",
            engine.model_len,
            "memory",
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


def _held_fix(engine: Engine, held: HeldMemory, profile: GpuProfile, otherwise: str) -> str:
    """The highest utilization that starts beside the held memory, offered only when the
    estimate says the engine starts there (weights, activation and a KV cache included)."""
    cap = held.max_utilization
    budget = GpuBudget.of(profile, held_gib=held.held_gib)
    if cap > 0 and estimate(replace(engine, gpu_memory_utilization=cap), budget).starts:
        return f"set model.gpuMemoryUtilization <= {cap:.2f}, or {otherwise}"
    return f"no utilization starts it beside {_gib(held.held_gib)} held: {otherwise}"


def _desktop_finding(
    alone: MemoryEstimate, beside: MemoryEstimate, engine: Engine, profile: GpuProfile
) -> Finding | None:
    """A desktop session's typical memory, treated as the image's release treats memory other
    processes hold at start (memory.held_memory): `beside` is the same engine estimated with the
    desktop held too. A refusal or an allocation failure when free memory is below utilization
    x total, or (V1 up to v0.9.0) a KV cache smaller by that much."""
    desktop_gib = profile.desktop_mib / 1024
    held = beside.held
    if not desktop_gib or alone.failure is not None or held is None:
        return None
    if held.rule == "charged":
        if beside.starts and beside.max_concurrency >= CONCURRENCY_WARN:
            return None
        effect = (
            f"leaving {_gib(max(0.0, beside.kv_cache_gib))} of KV cache, "
            f"{beside.max_concurrency:.2f} requests of {engine.model_len} tokens"
            if beside.starts
            else "and it does not start"
        )
        return Finding(
            "WARN",
            Problem(
                "model.gpuMemoryUtilization",
                f"vLLM {engine.version} counts memory other processes hold as its own: a desktop "
                f"session on {profile.name} typically holds {_gib(desktop_gib)}, {effect}",
                "run the node headless, or use a v0.9.1+ image",
                alone.utilization,
            ),
            "desktop",
        )
    if beside.starts:
        return None
    outcome = (
        "vLLM refuses when free memory < utilization x total"
        if held.rule == "refused"
        else "this release's KV cache then fails to allocate"
    )
    others = held.held_gib - desktop_gib
    return Finding(
        "WARN",
        Problem(
            "model.gpuMemoryUtilization",
            f"{alone.utilization} asks for {_gib(held.utilization * held.visible_gib)} free at "
            f"start, but a desktop session on {profile.name} typically holds "
            f"{_gib(desktop_gib)}"
            + (f" beside the other instances' {_gib(others)}" if others > 0.005 else "")
            + f"; {outcome}",
            _held_fix(engine, held, profile, "run the node headless"),
            alone.utilization,
        ),
        "desktop",
    )


def _prefixed(finding: Finding, prefix: str, name: str) -> Finding:
    """An instance archetype's finding, keyed under its own values."""
    if prefix == "model":
        return finding
    problem = finding.problem
    return replace(
        finding,
        problem=replace(
            problem,
            key=problem.key.replace("model", prefix, 1),
            message=f"archetype {name}: {problem.message}",
            fix=problem.fix.replace("model.", f"{prefix}."),
        ),
    )


def _gpu_findings(
    values: dict[str, Any],
    server: Settings,
    server_engine: Engine,
    profile: GpuProfile,
    profiles: ProfileSet,
    version: VllmVersion,
    report: PreflightReport,
) -> list[Finding]:
    """The server and the instance archetypes beside it, estimated together (estimate_gpu: each
    as if it started last, since Kubernetes does not order the pods); then what a desktop
    session does to each, and whether the cluster can place every GPU pod."""
    extra = archetype_instances(values)
    found: list[Finding] = []
    members: list[tuple[str, Engine]] = [("model", replace(server_engine, name="server"))]
    for instance in extra:
        prefix = f"archetypes[{instance.index}].instance.model"
        s = read_settings(instance.values, gpu=profile.name)
        found += [
            Finding("FAIL", replace(p, key=p.key.replace("model", prefix, 1)), "values")
            for p in s.problems
        ]
        if s.problems:
            continue
        spec = resolve_model(s.model, revision=s.revision)
        instance_version = _selected_version(s, version)
        # The instance runs the same image on the same card, with its own model: the same rules.
        for finding in evaluate(setup_from_settings(s, profile, spec, instance_version)):
            found.append(_prefixed(finding, prefix, instance.name))
        engine = replace(engine_from_settings(s, spec, instance_version), name=instance.name)
        members.append((prefix, engine))
    engines = [engine for _, engine in members]
    shares = [(e.name, e.gpu_memory_utilization) for e in engines]
    total = sum(share for _, share in shares)
    over = len(engines) > 1 and total > SHARED_GPU_CEILING
    budget = GpuBudget.of(profile)
    if over:  # the sum is the finding; each engine is judged on its own share alone
        estimates = [estimate_gpu(budget, [engine])[0][0] for engine in engines]
    else:
        estimates, _left = estimate_gpu(budget, engines)
    for (prefix, engine), est in zip(members, estimates, strict=True):
        if prefix == "model":
            report.estimate = est
            report.engine = server_engine
        else:
            report.instances.append({"archetype": engine.name, **est.as_dict()})
        fixes = report.fixes if prefix == "model" else None
        others = 0.0 if over else total - engine.gpu_memory_utilization
        found += [
            _prefixed(f, prefix, engine.name)
            for f in _memory_findings(est, engine, profile, profiles, fixes, others)
        ]
    if profile.desktop_mib and not over:
        desktop, _left = estimate_gpu(GpuBudget.of(profile, desktop=True), engines)
        for (prefix, engine), alone, beside in zip(members, estimates, desktop, strict=True):
            warning = _desktop_finding(alone, beside, engine, profile)
            if warning is not None:
                found.append(_prefixed(warning, prefix, engine.name))
    if not extra:
        return found

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
    if over:
        spelled = " + ".join(f"{name} {share:.2f}" for name, share in shares)
        found.append(
            Finding(
                "FAIL",
                Problem(
                    "archetypes",
                    f"the vLLM instances on {profile.name} claim {spelled} = {total:.2f} of "
                    f"the card, above {SHARED_GPU_CEILING}: whichever starts last finds too "
                    "little free memory",
                    "lower model.gpuMemoryUtilization or the instances' "
                    "instance.model.gpuMemoryUtilization, or serve some with mode prompt or lora",
                    round(total, 2),
                ),
                "sharing",
            )
        )
    return found


def _selected_version(s: Settings, version: VllmVersion) -> VllmVersion:
    """The release with the engine VLLM_USE_V1=0 selects, on the releases that read it."""
    if (s.use_v1 or "").strip() == "0" and (V0_SELECTABLE[0] <= version.parts < V0_SELECTABLE[1]):
        return version.with_engine("v0")
    return version


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
        pipeline_parallel_size=s.pipeline_parallel_size,
        data_parallel_size=s.data_parallel_size,
        pp_layer_partition=s.pp_layer_partition,
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
        auto_max_model_len=s.auto_max_model_len,
        kv_cache_memory_bytes=s.kv_cache_memory_bytes,
        estimate_cudagraphs=s.estimate_cudagraphs,
        pooling=s.runner == "pooling",
        flashinfer_sampler=s.flashinfer_sampler,
        mxfp4_use_marlin=s.mxfp4_use_marlin,
        hybrid_kv_cache=s.hybrid_kv_cache,
        pipeline_parallel_size=s.pipeline_parallel_size,
        pp_layer_partition=s.pp_layer_partition,
        data_parallel_size=s.data_parallel_size,
        expert_parallel=s.expert_parallel,
        mm=s.mm,
    )


def _looks_like_repo(name: str) -> bool:
    return name.count("/") == 1 and " " not in name.strip() and not name.startswith(("/", "."))


def _lookup_model(name: str, revision: str, refresh: bool) -> ModelSpec:
    """The cache, the catalog, then the Hub: the catalog is curated and answers offline, so the
    Hub is asked only for models it does not know (or with --refresh)."""
    repo = name.strip()
    revision = revision or "main"
    if _looks_like_repo(repo):
        if not refresh:
            hit = hub.cached(repo, revision)
            if hit is not None:
                return hub.spec_from_hub(hit)
            known = load_catalog().get(repo)
            if known is not None:
                return known
        return hub.spec_from_hub(hub.lookup(repo, revision, refresh=refresh))
    return load_catalog().find(name)


def resolve_model(
    name: str,
    *,
    revision: str = "main",
    model_config: str | Path | None = None,
    weights_gib: float | None = None,
    safetensors_index: str | Path | None = None,
    refresh: bool = False,
) -> ModelSpec:
    """The model's facts, in order: --model-config, the cache, the catalog, the Hub."""
    if model_config:
        spec = replace(load_model_config(model_config, name=name), origin="--model-config")
    else:
        spec = _lookup_model(name, revision, refresh)
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
    refresh: bool = False,
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
            refresh=refresh,
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
    refresh: bool = False,
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
        revision=s.revision,
        model_config=model_config,
        weights_gib=weights_gib,
        safetensors_index=safetensors_index,
        refresh=refresh,
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
    if not s.problems and not any(f.rule == "pp-stage-without-layers" for f in findings):
        engine = engine_from_settings(s, spec, _selected_version(s, version))
        shared = _gpu_findings(values, s, engine, profile, profiles, version, report)
        findings += [replace(f, problem=replace(f.problem, source=source)) for f in shared]
        findings += [
            replace(f, problem=replace(f.problem, source=source))
            for f in _flag_findings(s, version)
        ]
    if spec.weights_estimated:
        report.notes.append(
            f"weights estimated from the parameter count "
            f"({spec.checkpoint_gb():.2f} GB); pass --weights-gib for exact figures"
        )
    report.findings = findings
    report.verdict = _verdict(findings)
    return report


def _flag_findings(s: Settings, version: VllmVersion) -> list[Finding]:
    """Engine flags and variables the image's vLLM does not know, or no longer knows."""
    found = []
    # the first release without V0 still reads the variable, and stops on it
    if (s.use_v1 or "").strip() == "0" and version.pinned and version.parts == V0_SELECTABLE[1]:
        found.append(
            Finding(
                "FAIL",
                Problem(
                    "extraEnv",
                    f"VLLM_USE_V1=0 asks for the V0 engine, which {version} no longer has: "
                    "its API server stops at start",
                    "drop VLLM_USE_V1 from extraEnv, or use a v0.10 image for V0",
                    "0",
                ),
                "flags",
            )
        )
    if s.auto_max_model_len and not version.at_least(AUTO_MAX_MODEL_LEN):
        found.append(
            Finding(
                "FAIL",
                Problem(
                    "model.extraArgs",
                    f"--max-model-len -1 needs vLLM v0.14 or newer, the image runs {version}",
                    "give model.maxModelLen a token count, or use a v0.14+ image",
                    -1,
                ),
                "flags",
            )
        )
    if s.kv_cache_memory_bytes is not None and not version.at_least(KV_CACHE_MEMORY_BYTES):
        found.append(
            Finding(
                "FAIL",
                Problem(
                    s.overridden.get("kv-cache-memory-bytes", "model.extraArgs").split(" ")[0],
                    f"--kv-cache-memory-bytes needs vLLM v0.10.2 or newer, the image runs "
                    f"{version}",
                    "drop it and size the cache with model.gpuMemoryUtilization",
                    s.kv_cache_memory_bytes,
                ),
                "flags",
            )
        )
    return found


def _architecture(est: MemoryEstimate, spec: ModelSpec | None) -> str:
    if spec is None:
        return "unknown"
    text = spec.family
    if est.sliding_layers:
        text += (
            f" ({est.sliding_layers} of {spec.layers} layers slide over {est.sliding_window} "
            f"tokens; {est.kv_groups} KV cache groups)"
        )
    if spec.is_moe:
        text += f", {spec.experts} experts, {spec.experts_per_token} active"
    return text


def _source_line(spec: ModelSpec) -> str:
    where = {
        "catalog": "the built-in catalog",
        "cache": "the Archon cache of the Hub",
        "hub": "the Hugging Face Hub",
        "--model-config": "--model-config",
    }.get(spec.origin, spec.origin)
    commit = f" (commit {spec.commit[:12]})" if spec.commit else ""
    return f"{where}{commit}; weights: {spec.weights_source}"


def _parallel_rows(est: MemoryEstimate) -> list[tuple[str, str]]:
    rows = []
    if est.data_parallel_size > 1 or est.expert_parallel_size > 1:
        text = f"{est.data_parallel_size} engines, one KV cache each"
        if est.expert_parallel_size > 1:
            text += f"; expert parallel over {est.expert_parallel_size} GPUs"
        rows.append(("data parallel", text))
    if est.stages:
        spans = ", ".join(
            f"{s['layers'][0]}-{s['layers'][1] - 1} on {s['gpu']} (KV {s['kv_cache_gib']:.2f} GiB)"
            for s in est.stages
        )
        shown = next(s["stage"] for s in est.stages if s["bottleneck"])
        rows.append(("pipeline stages", f"layers {spans}; the rows below are stage {shown}'s"))
    return rows


def render_table(report: PreflightReport) -> str:
    lines = [f"preflight: {report.verdict}  {report.model} on {report.gpu} ({report.image})"]
    est = report.estimate
    if est is not None:
        rows = [
            ("model facts from", _source_line(report.spec) if report.spec else "unknown"),
            ("architecture", _architecture(est, report.spec)),
            *_parallel_rows(est),
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
    if report.fixes:
        lines.append("changes that would make it fit:")
        lines += [f"  try: {fix.line()}" for fix in report.fixes]
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)
