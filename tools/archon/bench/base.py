"""The one shape every benchmark has: a name, its arguments, and a run that measures and
compares with the target. `archon bench` renders every result the same way."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class BenchResult:
    """Measured figures (JSON-ready), the target in words, and whether it was met."""

    name: str
    target: str
    met: bool
    figures: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # the text report above the verdict

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.name, **self.figures, "target": self.target, "met": self.met}

    def text(self) -> str:
        verdict = f"target: {self.target}: {'met' if self.met else 'NOT met'}"
        return "\n".join([*self.lines, verdict])


class Benchmark(Protocol):
    """A module in archon.bench exposing `BENCHMARK` (an object of this shape) is a benchmark."""

    name: str
    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> BenchResult: ...
