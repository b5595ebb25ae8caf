"""`archon bench cluster`: warm `cluster up`, `deploy` to Ready, `uninstall`, in seconds.

Warm means the binaries are built; the cluster itself is created from nothing (it is taken down
first, untimed). Target: a warm start within 30 s.
"""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

from archon.bench.base import BenchResult

WARM_UP_TARGET_S = 30.0
NAMESPACE = "archon-bench"


class ClusterBenchmark:
    name = "cluster"
    help = "warm cluster up, deploy to Ready, uninstall (seconds each)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-f", "--values", help="values file to deploy (default: the shipped rtx5080 profile)"
        )
        parser.add_argument(
            "--keep", action="store_true", help="leave the cluster running afterwards"
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        from archon.cluster.lifecycle import down, local_target, up
        from archon.deploy.install import DeployOptions, deploy
        from archon.deploy.uninstall import uninstall
        from archon.helm import DEFAULT_RELEASE
        from archon.paths import profiles_dir

        values = Path(args.values) if args.values else profiles_dir() / "rtx5080.yaml"
        quiet = io.StringIO()  # the steps' own progress lines; the bench prints only timings
        down(out=quiet)
        timings: dict[str, float] = {}

        start = time.perf_counter()
        up(None, out=quiet)
        timings["cluster up (warm)"] = time.perf_counter() - start

        start = time.perf_counter()
        up(None, out=quiet)
        timings["cluster up (already running)"] = time.perf_counter() - start

        start = time.perf_counter()
        opts = DeployOptions([values], namespace=NAMESPACE, target=local_target(), timeout_s=180)
        deploy(opts, out=quiet)
        timings["deploy to Ready"] = time.perf_counter() - start

        start = time.perf_counter()
        uninstall(local_target(), NAMESPACE, DEFAULT_RELEASE, out=quiet)
        timings["uninstall"] = time.perf_counter() - start

        if not args.keep:
            down(out=quiet)
        met = timings["cluster up (warm)"] <= WARM_UP_TARGET_S
        return BenchResult(
            name=self.name,
            target=f"warm cluster up <= {WARM_UP_TARGET_S:.0f} s",
            met=met,
            figures={"timings_s": timings, "warm_up_target_s": WARM_UP_TARGET_S, "ok": met},
            lines=[f"{name:<30} {seconds:7.2f} s" for name, seconds in timings.items()],
        )


BENCHMARK = ClusterBenchmark()
