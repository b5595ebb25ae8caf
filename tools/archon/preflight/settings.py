"""Read the chart values the preflight needs (the contract with charts/archon/values.yaml).

This is the one place that turns values into vLLM engine settings. The chart writes the
`model.*` keys into vLLM's config file, merges `model.extraConfig` into it, and appends
`model.extraArgs` to the command line, where vLLM lets them win. The effective setting is
therefore: `model.<key>`, then the same flag in `extraConfig`, then in `extraArgs`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from archon.errors import Problem
from archon.preflight.multimodal import MM_FLAGS, MmSettings, apply_mm_flag
from archon.preflight.parallel import PartitionError, parse_partition
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
    runner: str = ""  # --runner; "pooling" serves embeddings and runs no sampler
    tensor_parallel_size: int = 1
    max_loras: int = 0
    max_lora_rank: int = 16
    rope_scaling: bool = False
    revision: str = "main"
    auto_max_model_len: bool = False  # --max-model-len -1: vLLM picks the largest that fits
    kv_cache_memory_bytes: int | None = None  # --kv-cache-memory-bytes: a fixed KV cache size
    estimate_cudagraphs: bool | None = None  # VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS in extraEnv
    flashinfer_sampler: bool = False  # VLLM_USE_FLASHINFER_SAMPLER=1 in extraEnv
    mxfp4_use_marlin: bool | None = None  # VLLM_MXFP4_USE_MARLIN in extraEnv
    mm: MmSettings | None = None  # --limit-mm-per-prompt and the other MM_FLAGS
    hybrid_kv_cache: bool | None = None  # False: --disable-hybrid-kv-cache-manager
    pipeline_parallel_size: int = 1  # --pipeline-parallel-size / -pp
    pp_layer_partition: tuple[int, ...] | None = None  # VLLM_PP_LAYER_PARTITION in extraEnv
    data_parallel_size: int = 1  # --data-parallel-size / -dp
    expert_parallel: bool = False  # --enable-expert-parallel
    use_v1: str | None = None  # VLLM_USE_V1 in extraEnv, as written
    overridden: dict[str, str] = field(default_factory=dict)  # key -> the flag that set it
    problems: list[Problem] = field(default_factory=list)

    @property
    def image(self) -> str:
        return f"{self.image_repository}:{self.image_tag}"


# vLLM's one-letter spellings of the parallel sizes (vllm/engine/arg_utils.py add_cli_args).
_SHORT_FLAGS = {
    "tp": "tensor-parallel-size",
    "pp": "pipeline-parallel-size",
    "dp": "data-parallel-size",
}


def _is_flag(arg: str) -> bool:
    """A flag, not a value: `--name`, or a short spelling such as `-pp` (`-1` is a value)."""
    return arg.startswith("--") or (arg[:1] == "-" and arg[1:].partition("=")[0] in _SHORT_FLAGS)


def _flag_map(extra_config: Any, extra_args: Any) -> dict[str, Any]:
    """vLLM CLI flags from model.extraConfig (a map) and model.extraArgs (a list): name -> value."""
    flags: dict[str, Any] = {}
    if isinstance(extra_config, dict):
        for key, value in extra_config.items():
            flags[str(key).lstrip("-").replace("_", "-")] = value
    if isinstance(extra_args, list):
        args = [str(a) for a in extra_args]
        for i, arg in enumerate(args):
            short = arg[1:].partition("=")[0] if arg[:1] == "-" and arg[1:2] != "-" else ""
            if short in _SHORT_FLAGS:
                arg = "--" + _SHORT_FLAGS[short] + arg[1 + len(short) :]
            elif not arg.startswith("--"):
                continue
            name, _, value = arg[2:].partition("=")
            if not value and i + 1 < len(args) and not _is_flag(args[i + 1]):
                value = args[i + 1]
            flags[name.replace("_", "-")] = value if value else True
    return flags


_HUMAN_INT = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([kKmMgGtT]?)\s*$")
# vLLM's human_readable_int (vllm/engine/arg_utils.py): lower-case suffixes are decimal,
# upper-case ones binary ("25.6k" = 25600, "1G" = 2^30).
_DECIMAL = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human_int(value: Any) -> int | None:
    """An integer flag value as vLLM parses it ("8192", "32k", "8G", 8192); None if not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    match = _HUMAN_INT.match(str(value))
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2)
    scale = _DECIMAL.get(suffix) or _BINARY.get(suffix) or 1
    return int(number * scale)


def plain_int(value: Any) -> int | None:
    """An integer flag value as argparse's `int` reads it ("2", 2); None for "2k", "1.5", 1.5."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _flag_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    return None


def _env_value(extra_env: Any, name: str) -> str | None:
    if not isinstance(extra_env, list):
        return None
    for item in extra_env:
        if isinstance(item, dict) and item.get("name") == name and "value" in item:
            return str(item["value"])
    return None


def _apply_flags(s: Settings, config: dict[str, Any], args: dict[str, Any]) -> None:
    """Engine flags given in extraConfig / extraArgs override the model.* values."""
    for where, flags in (("model.extraConfig", config), ("model.extraArgs", args)):

        def bad(flag: str, value: Any, want: str, where: str = where) -> None:
            s.problems.append(
                Problem(where, f"--{flag} {value!r} is not {want}", f"give --{flag} {want}", value)
            )

        for flag, value in flags.items():
            source = f"{where} --{flag}"
            if flag == "max-model-len":
                number = human_int(value)
                if number == -1:
                    s.auto_max_model_len, s.max_model_len = True, None
                elif number is not None and number > 0:
                    s.auto_max_model_len, s.max_model_len = False, number
                else:
                    bad(flag, value, "a token count or -1")
                    continue
            elif flag in (
                "max-num-seqs",
                "max-num-batched-tokens",
                "tensor-parallel-size",
                "pipeline-parallel-size",
                "data-parallel-size",
            ):
                if value is True:  # the flag without its value
                    s.problems.append(
                        Problem(
                            where,
                            f"--{flag} needs a number",
                            f"give --{flag} a whole number >= 1, e.g. --{flag} 2",
                            value,
                        )
                    )
                    continue
                # the parallel sizes are argparse `int` in vLLM (vllm/engine/arg_utils.py):
                # no "2k", no "1.5"
                number = human_int(value) if flag.startswith("max-") else plain_int(value)
                if number is None or number < 1:
                    bad(flag, value, "a whole number >= 1")
                    continue
                if flag == "max-num-seqs":
                    s.max_num_seqs = number
                elif flag == "max-num-batched-tokens":
                    s.max_num_batched_tokens = number
                elif flag == "pipeline-parallel-size":
                    s.pipeline_parallel_size = number
                elif flag == "data-parallel-size":
                    s.data_parallel_size = number
                else:
                    s.tensor_parallel_size = number
            elif flag in ("enable-expert-parallel", "no-enable-expert-parallel"):
                on = _flag_bool(value)
                if on is None:
                    bad(flag, value, "true or false")
                    continue
                s.expert_parallel = on if flag == "enable-expert-parallel" else not on
            elif flag == "kv-cache-memory-bytes":
                number = human_int(value)
                if number is None or number < 1:
                    bad(flag, value, "a size in bytes such as 4G")
                    continue
                s.kv_cache_memory_bytes = number
            elif flag == "gpu-memory-utilization":
                try:
                    util = float(value)
                except (TypeError, ValueError):
                    util = -1.0
                if not 0 < util <= 1:
                    bad(flag, value, "a fraction in (0, 1]")
                    continue
                s.utilization = util
            elif flag in ("enforce-eager", "no-enforce-eager"):
                on = _flag_bool(value)
                if on is None:
                    bad(flag, value, "true or false")
                    continue
                s.enforce_eager = on if flag == "enforce-eager" else not on
            elif flag == "model" and isinstance(value, str) and value:
                s.model = value
            elif flag in MM_FLAGS:
                try:
                    s.mm = apply_mm_flag(s.mm, flag, value)
                except ValueError as exc:
                    bad(flag, value, str(exc))
                    continue
            elif flag in ("kv-cache-dtype", "quantization", "dtype"):
                attr = {"kv-cache-dtype": "kv_cache_dtype"}.get(flag, flag)
                setattr(s, attr, str(value))
            else:
                continue
            s.overridden[flag] = source


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
    s.runner = text("model.runner", "") or ""
    s.tensor_parallel_size = integer("model.tensorParallelSize", 1) or 1

    s.revision = text("model.revision", "main") or "main"
    flags = _flag_map(get_path(values, "model.extraConfig"), get_path(values, "model.extraArgs"))
    _apply_flags(
        s,
        _flag_map(get_path(values, "model.extraConfig"), None),
        _flag_map(None, get_path(values, "model.extraArgs")),
    )
    graphs = _env_value(get_path(values, "extraEnv"), "VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS")
    if graphs is not None:
        s.estimate_cudagraphs = _flag_bool(graphs)
    partition = _env_value(get_path(values, "extraEnv"), "VLLM_PP_LAYER_PARTITION")
    if partition is not None:
        try:
            s.pp_layer_partition = parse_partition(partition)
        except PartitionError as exc:
            problems.append(
                Problem(
                    "extraEnv",
                    f"VLLM_PP_LAYER_PARTITION {partition!r}: {exc}; vLLM refuses to start",
                    "give comma-separated layer counts, one per pipeline stage, e.g. 16,32",
                    partition,
                )
            )
    s.use_v1 = _env_value(get_path(values, "extraEnv"), "VLLM_USE_V1")
    sampler = _env_value(get_path(values, "extraEnv"), "VLLM_USE_FLASHINFER_SAMPLER")
    s.flashinfer_sampler = sampler is not None and _flag_bool(sampler) is True
    marlin = _env_value(get_path(values, "extraEnv"), "VLLM_MXFP4_USE_MARLIN")
    s.mxfp4_use_marlin = None if marlin is None else _flag_bool(marlin)
    if "disable-hybrid-kv-cache-manager" in flags:
        s.hybrid_kv_cache = _flag_bool(flags["disable-hybrid-kv-cache-manager"]) is False
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
