"""vLLM versions: parse an image tag and say which memory accounting that release uses."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")

# Boundaries in vLLM's memory accounting (see docs/preflight.md for the full story):
# - 0.6.4: the profiler reports weights / non-torch / activation peak separately
#   (vllm-project/vllm#10511); before, "peak" was total minus free after the profile run, so it
#   included everything.
PROFILER_SPLIT = (0, 6, 4)
# - 0.8.0: the V1 engine is the default (chunked prefill always on, profile at
#   max_num_batched_tokens, a dummy sampler run over max_num_seqs requests).
V1_DEFAULT = (0, 8, 0)
# - 0.18.0: vLLM estimates CUDA-graph memory (profile_cudagraph_memory in
#   vllm/v1/worker/gpu_model_runner.py) and subtracts it before sizing the KV cache only when
#   VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=1 (vllm/envs.py).
GRAPHS_ESTIMATED = (0, 18, 0)
# - 0.20.0: subtracted by default. The log line says "CUDA graph memory profiling is enabled
#   (default since v0.21.0)", but the v0.20.0 release already defaults the variable on; before
#   0.18 graphs were captured after sizing, outside the budget.
GRAPHS_BUDGETED = (0, 20, 0)
# - 0.14.0: --max-model-len -1 lets vLLM pick the largest length that fits
#   (vllm/v1/core/kv_cache_utils.py); 0.10.2: --kv-cache-memory-bytes.
AUTO_MAX_MODEL_LEN = (0, 14, 0)
KV_CACHE_MEMORY_BYTES = (0, 10, 2)
# - 0.9.2: the hybrid KV cache manager (vllm-project/vllm#17996, merged June 2025, first in a
#   release by 0.9.2) gives sliding-window layers of a mixed model blocks for their window only;
#   before, unify_hybrid_kv_cache_specs turned them into full-attention layers. 0.9.1 may
#   already have it; counting it from 0.9.2 errs towards less KV cache.
HYBRID_KV_CACHE = (0, 9, 2)
# - VLLM_USE_V1=0 selects the V0 engine from 0.8.0 (where V1 became the default) up to 0.10.x
#   (vllm/engine/arg_utils.py create_engine_config: "If VLLM_USE_V1=0, we disable V1"); 0.11.0
#   has no V0 engine (vllm/engine/llm_engine.py `LLMEngine = V1LLMEngine`) and its API server
#   stops on `assert envs.VLLM_USE_V1`; 0.11.1 no longer reads the variable (vllm/envs.py).
V0_SELECTABLE = ((0, 8, 0), (0, 11, 0))
# The newest release whose behaviour the model encodes; unpinned tags are read as this.
NEWEST_KNOWN = (0, 28, 0)


@dataclass(frozen=True)
class VllmVersion:
    parts: tuple[int, int, int]
    text: str
    pinned: bool = True
    forced_engine: str = ""  # "v0": VLLM_USE_V1=0 on a release that still has the V0 engine

    @classmethod
    def parse(cls, tag: str | None) -> VllmVersion | None:
        """'v0.19.1' / '0.22.1-cu129' / '0.7.3.dev233+g..' -> a version; 'latest' -> None."""
        if not tag:
            return None
        match = _VERSION.search(str(tag))
        if not match:
            return None
        major, minor, patch = match.group(1), match.group(2), match.group(3) or "0"
        return cls((int(major), int(minor), int(patch)), str(tag))

    @classmethod
    def newest(cls, text: str = "latest") -> VllmVersion:
        return cls(NEWEST_KNOWN, text, pinned=False)

    def __str__(self) -> str:
        return "v{}.{}.{}".format(*self.parts) if self.pinned else self.text

    def at_least(self, other: tuple[int, int, int]) -> bool:
        return self.parts >= other

    @property
    def engine(self) -> str:
        return self.forced_engine or ("v1" if self.at_least(V1_DEFAULT) else "v0")

    def with_engine(self, engine: str) -> VllmVersion:
        """This release running `engine` ("v0"/"v1"), as VLLM_USE_V1 selects it."""
        default = "v1" if self.at_least(V1_DEFAULT) else "v0"
        return replace(self, forced_engine="" if engine == default else engine)

    @property
    def graphs_budgeted(self) -> bool:
        return self.at_least(GRAPHS_BUDGETED)

    def graphs_in_budget(self, env: bool | None) -> bool:
        """Whether this release subtracts the CUDA-graph estimate, given the variable's value."""
        if env is not None and self.at_least(GRAPHS_ESTIMATED):
            return env
        return self.graphs_budgeted


def parse_version_text(text: str) -> tuple[int, int, int]:
    version = VllmVersion.parse(text)
    if version is None:
        raise ValueError(f"not a version: {text!r}")
    return version.parts
