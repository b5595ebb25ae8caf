"""`archon bench council`: the fan-out overhead of the toolkit and the real gateway."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register_bench(benches: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = benches.add_parser(
        "council",
        help="6-archetype council through the real gateway over the simulation "
        "(target: <= 1.2x the slowest single call)",
    )
    parser.add_argument(
        "-f", "--values", type=Path, help="archetype values (default: values/council.yaml)"
    )
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.set_defaults(handler=_council)


def _council(args: argparse.Namespace) -> int:
    from archon.council.bench import LATENCY_S, TARGET_RATIO, run

    bench = run(args.values)
    if args.output == "json":
        print(json.dumps(bench.as_dict(), indent=2))
    else:
        print(
            f"gateway: real LiteLLM proxy on loopback (started in {bench.gateway_start_s:.1f} s); "
            f"simulated model latency {LATENCY_S:.2f} s"
        )
        for name, seconds in bench.singles_s.items():
            print(f"  single {name:<10} {seconds:.3f} s")
        print(f"slowest single call:            {bench.slowest_single_s:.3f} s")
        print(f"council of {len(bench.archetypes)} (concurrent fan-out): {bench.council_s:.3f} s")
        for failure in bench.failures:
            print(f"FAILED: {failure}")
        print(
            f"ratio: {bench.ratio:.2f}x (target <= {TARGET_RATIO}x): "
            + ("met" if bench.meets_target else "NOT met")
        )
    return EXIT_OK if bench.meets_target else EXIT_PROBLEMS
