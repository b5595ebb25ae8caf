"""`archon bench NAME`: benchmarks with their targets.

Every module of this package that defines `BENCHMARK` (see archon.bench.base.Benchmark) is one
benchmark; `registry()` finds them, so adding a benchmark is adding one module. The measuring
logic stays with the domain that owns it where it has one (archon.preflight.benchmark); the
modules here adapt it to the common shape.
"""

from __future__ import annotations

import importlib
import pkgutil

from archon.bench.base import Benchmark, BenchResult

__all__ = ["BenchResult", "Benchmark", "registry"]


def registry() -> list[Benchmark]:
    """Every benchmark, by name. Modules import their heavy dependencies inside `run`."""
    found: list[Benchmark] = []
    for module in pkgutil.iter_modules(__path__, prefix=f"{__name__}."):
        bench = getattr(importlib.import_module(module.name), "BENCHMARK", None)
        if bench is not None:
            found.append(bench)
    return sorted(found, key=lambda b: b.name)
