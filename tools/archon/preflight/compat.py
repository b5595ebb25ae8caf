"""Compatibility rules: loaded from data/compat/rules.yaml, one small check per rule `kind`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archon.errors import Problem
from archon.paths import data_file
from archon.preflight._yaml import load_yaml
from archon.preflight.catalog import ModelSpec, normalize_quantization
from archon.preflight.parallel import PartitionError, layer_counts
from archon.preflight.profiles import GpuProfile
from archon.preflight.versions import VllmVersion, parse_version_text

RULES_FILE = data_file("compat", "rules.yaml")

# Methods vLLM applies to a 16-bit checkpoint while loading it (docs: "FP8 W8A8, dynamic
# quantization: --quantization fp8" and "BitsAndBytes in-flight quantization").
ONLINE_QUANTIZATIONS = ("fp8", "bnb")


@dataclass(frozen=True)
class Finding:
    """A Problem with its weight: FAIL stops the deployment, WARN does not."""

    level: str
    problem: Problem
    rule: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {**self.problem.as_dict(), "level": self.level, "rule": self.rule}


@dataclass(frozen=True)
class Setup:
    """Everything a rule may look at."""

    gpu: GpuProfile
    model: ModelSpec
    version: VllmVersion
    vendor_value: str  # gpu.vendor as written
    image: str  # effective repository:tag
    image_repository: str
    image_tag: str
    quantization_value: str  # model.quantization as written ("" = let vLLM read it)
    dtype: str  # model.dtype as written, "auto" when unset
    kv_cache_dtype: str
    max_model_len: int
    tensor_parallel_size: int
    gpu_count: int
    lora: bool
    rope_scaling: bool = False
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    pp_layer_partition: tuple[int, ...] | None = None


def _cc_at_least(gpu: GpuProfile, text: str) -> bool | None:
    cc = gpu.compute_capability
    if cc is None:
        return None
    major, minor = (int(part) for part in str(text).split("."))
    return cc >= (major, minor)


def _effective_dtype(setup: Setup) -> str:
    dtype = (setup.dtype or "auto").lower()
    if dtype in ("auto", ""):
        written = (setup.quantization_value or "").strip().lower()  # as written: keeps _marlin
        if setup.model.quantization in ("gptq", "awq") and not written.endswith("_marlin"):
            # 4-bit GPTQ/AWQ checkpoints run with half activations: their kernels support only
            # float16 (vllm/model_executor/layers/quantization/{gptq,awq}.py
            # get_supported_act_dtypes), and the Qwen checkpoints ship torch_dtype float16.
            return "float16"
        # vLLM's "auto" takes the checkpoint's torch_dtype (and serves float32 as bfloat16 where
        # supported, vllm/config _get_and_verify_dtype)
        return setup.model.dtype.lower()
    return {"bf16": "bfloat16", "half": "float16", "fp16": "float16"}.get(dtype, dtype)


Check = Callable[[dict[str, Any], Setup], dict[str, Any] | None]


def _image_min_version_for_arch(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.gpu.arch in rule["arch"] and s.version.parts < parse_version_text(rule["min_version"]):
        return {"version": str(s.version)}
    return None


def _image_version_range_for_arch(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    low, high = parse_version_text(rule["min_version"]), parse_version_text(rule["below_version"])
    if s.gpu.arch in rule["arch"] and s.version.pinned and low <= s.version.parts < high:
        return {"version": str(s.version)}
    return None


def _dtype_min_cc(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if _effective_dtype(s) in rule["dtypes"] and _cc_at_least(s.gpu, rule["min_cc"]) is False:
        return {"value": _effective_dtype(s)}
    return None


def _quant_min_cc(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    quant = normalize_quantization(s.quantization_value or s.model.quantization)
    wanted = {normalize_quantization(q) for q in rule["quantizations"]}
    if quant in wanted and _cc_at_least(s.gpu, rule["min_cc"]) is False:
        return {"value": quant}
    return None


def _vendor_image(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.gpu.vendor != rule["vendor"]:
        return None
    repo = s.image_repository.lower()
    if "repository_must_contain" in rule and rule["repository_must_contain"] not in repo:
        return {"value": s.image_repository}
    if "repository_must_not_contain" in rule and rule["repository_must_not_contain"] in repo:
        return {"value": s.image_repository}
    return None


def _vendor_value(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.vendor_value and s.vendor_value.lower() != s.gpu.vendor:
        return {"value": s.vendor_value}
    return None


def _amd_arch_supported(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.gpu.vendor == "amd" and s.gpu.arch not in rule["supported"]:
        return {"value": s.gpu.name}
    return None


def _rocm_kv_cache_dtype(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.gpu.vendor == "amd" and (s.kv_cache_dtype or "auto").lower() != "auto":
        return {"value": s.kv_cache_dtype}
    return None


def _lora_quantization(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    quant = normalize_quantization(s.quantization_value or s.model.quantization)
    supported = {normalize_quantization(q) for q in rule["supported"]}
    if s.lora and quant not in supported:
        return {"value": quant}
    return None


def _max_model_len_limit(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if not s.rope_scaling and s.max_model_len > s.model.max_positions:
        return {"value": s.max_model_len, "limit": s.model.max_positions}
    return None


def _quantization_matches_checkpoint(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    written = normalize_quantization(s.quantization_value)
    checkpoint = s.model.quantization
    if checkpoint == "none" and written in ONLINE_QUANTIZATIONS:
        return None  # quantized while loading: a 16-bit checkpoint is what they start from
    if s.quantization_value and written != checkpoint:
        return {"value": s.quantization_value, "checkpoint": checkpoint}
    return None


def _model_min_vllm(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    needed = s.model.min_vllm
    if needed and s.version.parts < parse_version_text(needed):
        return {"min_version": needed, "version": str(s.version)}
    return None


def _tensor_parallel_gpus(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if (
        s.tensor_parallel_size > s.gpu_count
        and s.pipeline_parallel_size * s.data_parallel_size == 1
    ):
        return {"value": s.tensor_parallel_size, "count": s.gpu_count}
    return None


def _parallel_gpus(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    """Every rank of every pipeline stage of every DP engine needs a GPU of the pod (TP alone
    is the rule above)."""
    tp, pp, dp = s.tensor_parallel_size, s.pipeline_parallel_size, s.data_parallel_size
    world = tp * pp * dp
    if pp * dp > 1 and world > s.gpu_count:
        return {"value": s.gpu_count, "world": world, "tp": tp, "pp": pp, "dp": dp}
    return None


def _pipeline_beyond_layers(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    """More stages than layers, with no partition: the flag is what to change."""
    if s.pp_layer_partition is None and s.pipeline_parallel_size > s.model.layers:
        return {"value": s.pipeline_parallel_size, "layers": s.model.layers}
    return None


def _pp_layer_partition(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.pp_layer_partition is None:  # vLLM's own split; the rule above covers too many stages
        return None
    try:
        layer_counts(s.model.layers, s.pipeline_parallel_size, s.pp_layer_partition)
    except PartitionError as exc:
        text = ",".join(str(n) for n in s.pp_layer_partition or ()) or "(not set)"
        return {"value": text, "reason": str(exc), "layers": s.model.layers}
    return None


def _pp_stage_without_layers(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    partition = s.pp_layer_partition or ()
    if any(n < 1 for n in partition):
        return {"value": ",".join(str(n) for n in partition)}
    return None


def _tensor_parallel_heads(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    if s.model.heads % max(1, s.tensor_parallel_size):
        return {"value": s.tensor_parallel_size, "heads": s.model.heads}
    return None


def _image_unpinned(rule: dict[str, Any], s: Setup) -> dict[str, Any] | None:
    return None if s.version.pinned else {"value": s.image_tag}


CHECKS: dict[str, Check] = {
    "image_min_version_for_arch": _image_min_version_for_arch,
    "image_version_range_for_arch": _image_version_range_for_arch,
    "dtype_min_cc": _dtype_min_cc,
    "quant_min_cc": _quant_min_cc,
    "vendor_image": _vendor_image,
    "vendor_value": _vendor_value,
    "amd_arch_supported": _amd_arch_supported,
    "rocm_kv_cache_dtype": _rocm_kv_cache_dtype,
    "lora_quantization": _lora_quantization,
    "max_model_len_limit": _max_model_len_limit,
    "quantization_matches_checkpoint": _quantization_matches_checkpoint,
    "model_min_vllm": _model_min_vllm,
    "tensor_parallel_gpus": _tensor_parallel_gpus,
    "tensor_parallel_heads": _tensor_parallel_heads,
    "parallel_gpus": _parallel_gpus,
    "pp_layer_partition": _pp_layer_partition,
    "pipeline_beyond_layers": _pipeline_beyond_layers,
    "pp_stage_without_layers": _pp_stage_without_layers,
    "image_unpinned": _image_unpinned,
}

_RULES: list[dict[str, Any]] | None = None


def load_rules() -> list[dict[str, Any]]:
    global _RULES
    if _RULES is None:
        data = load_yaml(RULES_FILE)
        rules = data.get("rules") if isinstance(data, dict) else None
        if not isinstance(rules, list):
            raise ValueError(f"{RULES_FILE}: no `rules:` list")  # a packaging bug, not user input
        for rule in rules:
            if rule.get("kind") not in CHECKS or rule.get("level") not in ("FAIL", "WARN"):
                raise ValueError(f"{RULES_FILE}: bad rule {rule.get('id')!r}")
        _RULES = rules
    return _RULES


class _Fields(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def evaluate(setup: Setup, rules: list[dict[str, Any]] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules if rules is not None else load_rules():
        hit = CHECKS[rule["kind"]](rule, setup)
        if hit is None:
            continue
        fields = _Fields(
            gpu=setup.gpu.name,
            cc=setup.gpu.cc_text,
            arch=setup.gpu.arch,
            vendor=setup.gpu.vendor,
            image=setup.image,
            model=setup.model.name,
            version=str(setup.version),
        )
        fields.update(hit)
        problem = Problem(
            key=rule["key"],
            message=rule["message"].format_map(fields),
            fix=rule["fix"].format_map(fields),
            value=hit.get("value"),
        )
        findings.append(Finding(rule["level"], problem, rule["id"]))
    return findings
