"""`archon bench render`: render + kubeconform every scenario and profile, against the bare tools.

Both paths use the same inputs and the same warm toolchain. The baseline is what a careful shell
script does: `helm template` each file into a folder, then one `kubeconform -strict` over the
folder, calling the binaries directly (that is the point of a baseline). Archon's path is
`archon validate` (validate_scenarios: helm in a small thread pool, one kubeconform run). The
ratio shows what the toolkit costs, or saves, over the tools themselves.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from archon.bench.base import BenchResult
from archon.errors import CommandFailed
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE, template_args
from archon.paths import chart_dir, profiles_dir
from archon.toolchain import ensure
from archon.validate import kubeconform_args, validate_scenarios

TARGET_TOTAL_S = 5.0
TARGET_RATIO = 1.5


def scenario_files() -> list[Path]:
    chart_ci = sorted((chart_dir() / "ci").glob("*-values.yaml"))
    profiles = sorted(profiles_dir().glob("*.yaml"))
    return chart_ci + profiles


@dataclass
class RenderTimings:
    files: list[Path]
    archon_runs_s: list[float] = field(default_factory=list)
    direct_runs_s: list[float] = field(default_factory=list)
    resources: int = 0

    @property
    def archon_s(self) -> float:
        return statistics.median(self.archon_runs_s)

    @property
    def direct_s(self) -> float:
        return statistics.median(self.direct_runs_s)

    @property
    def ratio(self) -> float:
        return self.archon_s / self.direct_s if self.direct_s else float("inf")

    @property
    def meets_targets(self) -> bool:
        return self.archon_s < TARGET_TOTAL_S and self.ratio <= TARGET_RATIO

    def as_dict(self) -> dict[str, object]:
        return {
            "scenarios": len(self.files),
            "resources": self.resources,
            "archon_s": round(self.archon_s, 3),
            "direct_s": round(self.direct_s, 3),
            "ratio": round(self.ratio, 3),
            "runs": len(self.archon_runs_s),
            "target_total_s": TARGET_TOTAL_S,
            "target_ratio": TARGET_RATIO,
            "meets_targets": self.meets_targets,
        }


def _archon_pass(files: list[Path]) -> int:
    results = validate_scenarios(list(files))
    bad = [r for r in results if not r.ok]
    if bad:
        raise CommandFailed(f"{bad[0].file}: not valid: {bad[0].error or bad[0].resources}")
    return sum(len(r.resources) for r in results)


def _direct_pass(files: list[Path]) -> None:
    helm = str(ensure("helm"))
    with tempfile.TemporaryDirectory(prefix="archon-bench-") as tmp:
        for index, file in enumerate(files):
            args = template_args(
                str(chart_dir()), release=DEFAULT_RELEASE, namespace=DEFAULT_NAMESPACE
            )
            manifest = subprocess.run(
                [helm, *args], input=file.read_text(), capture_output=True, text=True, check=True
            ).stdout
            (Path(tmp) / f"{index}.yaml").write_text(manifest)
        subprocess.run([*kubeconform_args(), tmp], capture_output=True, text=True, check=True)


def measure(runs: int = 3) -> RenderTimings:
    files = scenario_files()
    timings = RenderTimings(files=files)
    timings.resources = _archon_pass(files)  # warm-up: page cache, schema compile, imports
    _direct_pass(files)
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        _direct_pass(files)
        timings.direct_runs_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        _archon_pass(files)
        timings.archon_runs_s.append(time.perf_counter() - start)
    return timings


class RenderBenchmark:
    name = "render"
    help = "render + kubeconform every scenario and profile, vs. the bare tools"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--runs", type=int, default=3, help="timed runs (median is reported)")

    def run(self, args: argparse.Namespace) -> BenchResult:
        timings = measure(runs=args.runs)
        return BenchResult(
            name=self.name,
            target=f"< {TARGET_TOTAL_S:.0f} s and <= {TARGET_RATIO}x the bare tools",
            met=timings.meets_targets,
            figures=timings.as_dict(),
            lines=[
                f"scenarios: {len(timings.files)} values files, {timings.resources} resources",
                f"archon render+validate: {timings.archon_s:.2f} s "
                f"(median of {len(timings.archon_runs_s)})",
                f"helm | kubeconform:     {timings.direct_s:.2f} s",
                f"ratio: {timings.ratio:.2f}x",
            ],
        )


BENCHMARK = RenderBenchmark()
