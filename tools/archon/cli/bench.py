"""`archon bench NAME`: run a benchmark and compare it with its target (archon.bench)."""

from __future__ import annotations

import argparse
import json
from functools import partial

from archon.bench import Benchmark, registry
from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "bench",
        help="run a benchmark and compare it with its target",
        description="Exit 0 when the target is met, 1 when it is missed.",
    )
    benches = parser.add_subparsers(dest="bench", metavar="BENCHMARK")
    benches.required = True
    for bench in registry():
        bench_parser = benches.add_parser(bench.name, help=bench.help)
        bench.add_arguments(bench_parser)
        options.add_output(bench_parser)
        bench_parser.set_defaults(handler=partial(run, bench))


def run(bench: Benchmark, args: argparse.Namespace) -> int:
    result = bench.run(args)
    if args.output == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.text())
    return EXIT_OK if result.met else EXIT_PROBLEMS
