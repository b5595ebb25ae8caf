"""`archon bench cluster`: warm `cluster up`, `deploy` to Ready, `uninstall`, in seconds.

Warm means the binaries are built; the cluster itself is created from nothing (it is taken down
first, untimed). Target from issue 6: a warm start within 30 s.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

from archon.errors import EXIT_OK, EXIT_PROBLEMS

WARM_UP_TARGET_S = 30.0
NAMESPACE = "archon-bench"


def register_bench(benches: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = benches.add_parser(
        "cluster", help="warm cluster up, deploy to Ready, uninstall (seconds each)"
    )
    parser.add_argument(
        "-f", "--values", default="values/rtx5080.yaml", help="values file to deploy"
    )
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running afterwards")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.cluster.lifecycle import down, up
    from archon.deploy.install import DeployOptions, deploy
    from archon.deploy.uninstall import uninstall
    from archon.paths import repo_root

    values = Path(args.values)
    if not values.is_absolute():
        values = repo_root() / values
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
    deploy(DeployOptions([values], namespace=NAMESPACE, timeout_s=180), out=quiet)
    timings["deploy to Ready"] = time.perf_counter() - start

    start = time.perf_counter()
    uninstall(None, NAMESPACE, "archon", out=quiet)
    timings["uninstall"] = time.perf_counter() - start

    if not args.keep:
        down(out=quiet)
    ok = timings["cluster up (warm)"] <= WARM_UP_TARGET_S
    if args.output == "json":
        print(json.dumps({"timings_s": timings, "warm_up_target_s": WARM_UP_TARGET_S, "ok": ok}))
    else:
        for name, seconds in timings.items():
            print(f"{name:<30} {seconds:7.2f} s")
        verdict = "meets" if ok else "MISSES"
        print(f"warm cluster up {verdict} the {WARM_UP_TARGET_S:.0f} s target", file=sys.stdout)
    return EXIT_OK if ok else EXIT_PROBLEMS
