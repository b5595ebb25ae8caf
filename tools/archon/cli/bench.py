"""`archon bench render|preflight|...`: benchmarks with their targets."""

from __future__ import annotations

import argparse
import importlib
import json

from archon.errors import EXIT_OK, EXIT_PROBLEMS

# Benchmarks owned by other command modules register themselves through register_bench().
BENCH_MODULES = [
    "archon.cli.bench_preflight",
    "archon.cli.bench_cluster",
    "archon.cli.bench_council",
]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("bench", help="run a benchmark and compare it with its target")
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    benches.required = True

    render = benches.add_parser(
        "render", help="render + kubeconform every scenario and profile, vs. the bare tools"
    )
    render.add_argument("--runs", type=int, default=3, help="timed runs (median is reported)")
    render.add_argument("--output", choices=["table", "json"], default="table")
    render.set_defaults(handler=_render)

    for name in BENCH_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register_bench(benches)


def _render(args: argparse.Namespace) -> int:
    from archon.benchmarks.render import TARGET_RATIO, TARGET_TOTAL_S, run

    bench = run(runs=args.runs)
    if args.output == "json":
        print(json.dumps(bench.as_dict(), indent=2))
    else:
        print(f"scenarios: {len(bench.files)} values files, {bench.resources} resources")
        print(
            f"archon render+validate: {bench.archon_s:.2f} s (median of {len(bench.archon_runs_s)})"
        )
        print(f"helm | kubeconform:     {bench.direct_s:.2f} s")
        print(
            f"ratio: {bench.ratio:.2f}x (target <= {TARGET_RATIO}x); "
            f"total target < {TARGET_TOTAL_S:.0f} s: "
            + ("met" if bench.meets_targets else "NOT met")
        )
    return EXIT_OK if bench.meets_targets else EXIT_PROBLEMS
