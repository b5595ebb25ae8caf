"""What would make a configuration fit, each change with the figure it reaches.

Every candidate is estimated with the same memory model, one change at a time, and only the
changes that make vLLM start are offered, cheapest first: a shorter context, an fp8 KV cache,
eager mode, fewer scheduled sequences or batched tokens, a higher utilization, a 4-bit build of
the same model, and last the smallest card that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from archon.errors import UsageError
from archon.preflight import hub
from archon.preflight.catalog import ModelSpec, load_catalog
from archon.preflight.memory import BLOCK_SIZE, Engine, GpuBudget, MemoryEstimate, estimate
from archon.preflight.profiles import GpuProfile, ProfileSet

FOUR_BIT = ("gptq", "awq", "bnb")
MAX_UTILIZATION_OFFERED = 0.95


def needed_gib(est: MemoryEstimate) -> float:
    """Memory the configuration needs for one request of max_model_len: everything vLLM spends
    before the KV cache, plus that request's KV blocks."""
    return est.usable_gib - est.kv_cache_gib + est.kv_needed_gib


def round_down(length: int) -> int:
    step = 1024 if length >= 4096 else 256 if length >= 512 else BLOCK_SIZE
    return max(BLOCK_SIZE, length // step * step)


@dataclass(frozen=True)
class Fix:
    key: str  # the value to change ("" for a different card)
    value: Any
    change: str  # how to say it: "set model.maxModelLen 4096"
    estimate: MemoryEstimate

    def reaches(self) -> str:
        est = self.estimate
        return (
            f"needs {needed_gib(est):.2f} GiB of {est.usable_gib:.2f} usable: "
            f"{est.kv_cache_tokens} KV tokens, {est.max_concurrency:.2f}x at {est.max_model_len}"
        )

    def line(self) -> str:
        return f"{self.change} ({self.reaches()})"

    def as_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "key": self.key or None,
            "value": self.value,
            "change": self.change,
            "needs_gib": round(needed_gib(est), 2),
            "usable_gib": round(est.usable_gib, 2),
            "kv_cache_tokens": est.kv_cache_tokens,
            "max_concurrency": round(est.max_concurrency, 2),
            "max_model_len": est.max_model_len,
        }


def four_bit_builds(model: ModelSpec) -> list[ModelSpec]:
    """Catalog entries with the same architecture stored in 4 bits."""
    if model.quantization in FOUR_BIT:
        return []

    def shape(spec: ModelSpec) -> tuple[int, ...]:
        return (
            spec.layers,
            spec.hidden,
            spec.heads,
            spec.kv_heads,
            spec.intermediate,
            spec.experts,
            spec.moe_intermediate,
        )

    base = hub.base_name(model.name).lower()
    found = [
        spec
        for spec in load_catalog().specs
        if spec.quantization in FOUR_BIT
        and shape(spec) == shape(model)
        and spec.name.split("/")[-1].lower().startswith(base)
    ]
    return sorted(found, key=lambda s: s.checkpoint_gb())


def _drastic_cut(fix: Fix, engine: Engine) -> bool:
    """A shorter maxModelLen that keeps less than half of the context asked for."""
    return fix.key == "model.maxModelLen" and int(fix.value) * 2 < engine.model_len


def suggest(
    engine: Engine,
    est: MemoryEstimate,
    gpu: GpuBudget,
    profile: GpuProfile,
    profiles: ProfileSet,
) -> list[Fix]:
    """Single changes that make this engine start, in the order a user would try them."""
    fixes: list[Fix] = []

    def attempt(key: str, value: Any, change: str, candidate: Engine, on: GpuBudget) -> bool:
        result = estimate(candidate, on)
        if result.starts:
            fixes.append(Fix(key, value, change, result))
        return result.starts

    def largest_below(
        key: str, values: Sequence[int], current: int, change: Callable[[int], Engine]
    ) -> None:
        """The first of `values` (largest first) under `current` that starts: the smallest cut."""
        for value in values:
            if value < current and attempt(key, value, f"set {key} {value}", change(value), gpu):
                return

    if 0 < est.max_model_len_fit < engine.model_len and not engine.auto_max_model_len:
        length = round_down(est.max_model_len_fit)
        attempt(
            "model.maxModelLen",
            length,
            f"set model.maxModelLen {length}",
            replace(engine, max_model_len=length),
            gpu,
        )
    if engine.kv_cache_dtype in ("auto", "bfloat16", "float16") and profile.vendor == "nvidia":
        attempt(
            "model.kvCacheDtype",
            "fp8",
            "set model.kvCacheDtype fp8",
            replace(engine, kv_cache_dtype="fp8"),
            gpu,
        )
    if not engine.enforce_eager and est.cudagraph_in_budget:
        attempt(
            "model.enforceEager",
            True,
            "set model.enforceEager true (slower decode)",
            replace(engine, enforce_eager=True),
            gpu,
        )
    # The V1 sampler pass scales with max_num_seqs, the activation peak with the token budget.
    largest_below(
        "model.maxNumSeqs",
        (128, 64, 32, 16, 8),
        est.max_num_seqs,
        lambda seqs: replace(engine, max_num_seqs=seqs),
    )
    largest_below(
        "model.maxNumBatchedTokens",
        (1024, 512),
        est.max_num_batched_tokens,
        lambda tokens: replace(engine, max_num_batched_tokens=tokens),
    )
    if (
        est.min_utilization is not None
        and engine.kv_cache_memory_bytes is None
        and est.utilization < est.min_utilization <= MAX_UTILIZATION_OFFERED
    ):
        attempt(
            "model.gpuMemoryUtilization",
            est.min_utilization,
            f"set model.gpuMemoryUtilization {est.min_utilization:.2f}",
            replace(engine, gpu_memory_utilization=est.min_utilization),
            gpu,
        )
    if all(_drastic_cut(fix, engine) for fix in fixes):
        # No single setting is enough, or only a context cut below half of what was asked:
        # fewer sequences and an fp8 cache together free the most memory short of another
        # model or card; then find the length that fits.
        combined = replace(engine, max_num_seqs=min(16, est.max_num_seqs))
        parts = [f"model.maxNumSeqs {combined.max_num_seqs}"]
        if engine.kv_cache_dtype in ("auto", "bfloat16", "float16") and profile.vendor == "nvidia":
            combined = replace(combined, kv_cache_dtype="fp8")
            parts.append("model.kvCacheDtype fp8")
        fit = estimate(combined, gpu).max_model_len_fit
        if fit >= BLOCK_SIZE and not engine.auto_max_model_len:
            length = min(engine.model_len, round_down(fit))
            combined = replace(combined, max_model_len=length)
            if length < engine.model_len:
                parts.append(f"model.maxModelLen {length}")
        attempt(
            "model.maxNumSeqs",
            combined.max_num_seqs,
            "set " + " and ".join(parts),
            combined,
            gpu,
        )
    before = len(fixes)
    for build in four_bit_builds(engine.model):
        attempt(
            "model.name",
            build.name,
            f"serve the 4-bit build {build.name}",
            replace(engine, model=build),
            gpu,
        )
        if len(fixes) > before:
            break
    if len(fixes) == before and engine.model.origin in ("hub", "cache"):
        # a model the catalog does not know: look for its 4-bit builds on the Hub
        for name in hub.four_bit_builds(engine.model.name):
            try:
                found = hub.spec_from_hub(hub.lookup(name))
            except UsageError:  # gated, gone, unreachable: not a suggestion then
                continue
            if (found.layers, found.hidden) != (engine.model.layers, engine.model.hidden):
                continue
            attempt(
                "model.name",
                name,
                f"serve the 4-bit build {name} (on the Hub)",
                replace(engine, model=found),
                gpu,
            )
            if len(fixes) > before:
                break
    card = smallest_card(engine, profiles, profile)
    if card is not None and card.name != profile.name:
        budget = GpuBudget.of(card)
        attempt(
            "",
            card.name,
            f"use a {round(card.memory_mib / 1024)} GB card such as {card.name}",
            engine,
            budget,
        )
    return fixes


def smallest_card(engine: Engine, profiles: ProfileSet, like: GpuProfile) -> GpuProfile | None:
    """The smallest card of the same vendor and class (desktop or data-center) that works."""
    fitting = [
        p
        for p in profiles
        if p.vendor == like.vendor
        and bool(p.desktop_mib) == bool(like.desktop_mib)
        and estimate(engine, GpuBudget.of(p)).starts
    ]
    return min(fitting, key=lambda p: p.memory_mib, default=None)
