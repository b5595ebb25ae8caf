"""Read the chart values the preflight needs (the contract with charts/archon/values.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from archon.errors import Problem
from archon.values import get_path

# Chart defaults, used when a value is absent (the chart's values.yaml holds the same).
DEFAULT_IMAGE = ("vllm/vllm-openai", "v0.19.1")
DEFAULT_ROCM_IMAGE = ("vllm/vllm-openai-rocm", "v0.19.1")
DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4"


@dataclass
class Settings:
    vendor: str = "nvidia"
    image_repository: str = DEFAULT_IMAGE[0]
    image_tag: str = DEFAULT_IMAGE[1]
    gpu_count: int = 1
    gpu_profile: str = ""
    model: str = DEFAULT_MODEL
    quantization: str = ""
    dtype: str = "auto"
    max_model_len: int | None = 8192
    utilization: float = 0.9
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    kv_cache_dtype: str = "auto"
    enforce_eager: bool = False
    tensor_parallel_size: int = 1
    max_loras: int = 0
    max_lora_rank: int = 16
    rope_scaling: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def image(self) -> str:
        return f"{self.image_repository}:{self.image_tag}"


def _flag_map(extra_config: Any, extra_args: Any) -> dict[str, Any]:
    """vLLM CLI flags from model.extraConfig (a map) and model.extraArgs (a list): name -> value."""
    flags: dict[str, Any] = {}
    if isinstance(extra_config, dict):
        for key, value in extra_config.items():
            flags[str(key).lstrip("-").replace("_", "-")] = value
    if isinstance(extra_args, list):
        args = [str(a) for a in extra_args]
        for i, arg in enumerate(args):
            if not arg.startswith("--"):
                continue
            name, _, value = arg[2:].partition("=")
            if not value and i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
            flags[name.replace("_", "-")] = value if value else True
    return flags


def read_settings(values: dict[str, Any], *, gpu: str | None = None) -> Settings:
    """Settings from merged chart values; wrong types become problems, not exceptions."""
    s = Settings()
    problems = s.problems

    def text(path: str, default: str) -> str:
        value = get_path(values, path, default)
        if value is None:
            return default
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            problems.append(
                Problem(path, f"{value!r} is not a string", "write it as a string", value)
            )
            return default
        return str(value)

    def integer(path: str, default: int | None, *, minimum: int = 1) -> int | None:
        value = get_path(values, path, default)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                Problem(
                    path,
                    f"{value!r} is not an integer",
                    f"set {path} to a whole number >= {minimum}",
                    value,
                )
            )
            return default
        if value < minimum:
            problems.append(
                Problem(
                    path,
                    f"{value} is below {minimum}",
                    f"set {path} to a whole number >= {minimum}",
                    value,
                )
            )
            return default
        return value

    s.vendor = text("gpu.vendor", "nvidia").lower()
    if s.vendor not in ("nvidia", "amd"):
        problems.append(
            Problem(
                "gpu.vendor",
                f"{s.vendor!r} is not nvidia or amd",
                "set gpu.vendor nvidia or amd",
                s.vendor,
            )
        )
        s.vendor = "nvidia"
    if s.vendor == "amd":
        s.image_repository = text("gpu.amd.image.repository", DEFAULT_ROCM_IMAGE[0])
        s.image_tag = text("gpu.amd.image.tag", text("image.tag", DEFAULT_ROCM_IMAGE[1]))
    else:
        s.image_repository = text("image.repository", DEFAULT_IMAGE[0])
        s.image_tag = text("image.tag", DEFAULT_IMAGE[1])
    s.gpu_count = integer("gpu.count", 1) or 1
    s.gpu_profile = gpu or text("gpu.profile", "")
    s.model = text("model.name", DEFAULT_MODEL)
    s.quantization = text("model.quantization", "")
    s.dtype = text("model.dtype", "auto") or "auto"
    s.max_model_len = integer("model.maxModelLen", 8192)
    util = get_path(values, "model.gpuMemoryUtilization", 0.9)
    if isinstance(util, bool) or not isinstance(util, (int, float)) or not 0 < util <= 1:
        problems.append(
            Problem(
                "model.gpuMemoryUtilization",
                f"{util!r} is outside (0, 1]",
                "set model.gpuMemoryUtilization to a fraction such as 0.90",
                util,
            )
        )
    else:
        s.utilization = float(util)
    s.max_num_seqs = integer("model.maxNumSeqs", None)
    s.max_num_batched_tokens = integer("model.maxNumBatchedTokens", None)
    s.kv_cache_dtype = text("model.kvCacheDtype", "auto") or "auto"
    eager = get_path(values, "model.enforceEager", False)
    if not isinstance(eager, bool) and eager is not None:
        problems.append(
            Problem(
                "model.enforceEager",
                f"{eager!r} is not true or false",
                "set model.enforceEager true or false",
                eager,
            )
        )
    s.enforce_eager = bool(eager) if isinstance(eager, bool) else False
    s.tensor_parallel_size = integer("model.tensorParallelSize", 1) or 1

    flags = _flag_map(get_path(values, "model.extraConfig"), get_path(values, "model.extraArgs"))
    lora_on = bool(flags.get("enable-lora")) or "max-loras" in flags
    if lora_on:
        try:
            s.max_loras = int(flags.get("max-loras", 1))
            s.max_lora_rank = int(flags.get("max-lora-rank", 16))
        except (TypeError, ValueError):
            problems.append(
                Problem(
                    "model.extraConfig",
                    "max-loras / max-lora-rank are not integers",
                    "give max-loras and max-lora-rank as whole numbers",
                )
            )
    s.rope_scaling = "rope-scaling" in flags or "hf-overrides" in flags
    return s
