"""`archon bench preflight --cases FILE.jsonl`: the memory model against recorded vLLM start-ups.

The lead's `archon bench` calls register_bench(bench_subparsers) to add this sub-command.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archon.errors import EXIT_OK


def register_bench(bench_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = bench_sub.add_parser(
        "preflight", help="replay vLLM start-up cases through the preflight memory model"
    )
    parser.add_argument(
        "--cases",
        required=True,
        metavar="FILE.jsonl",
        help="one case a line (format: docs/preflight.md)",
    )
    parser.add_argument(
        "--gpu-profiles", action="append", default=[], metavar="FILE", help="extra GPU profile file"
    )
    parser.add_argument("--output", choices=["table", "json"], default="table")
    parser.set_defaults(handler=_run)


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _run(args: argparse.Namespace) -> int:
    from archon.preflight.benchmark import run
    from archon.preflight.profiles import load_profiles

    result = run(args.cases, profiles=load_profiles(args.gpu_profiles))
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return EXIT_OK
    print(
        f"{'id':>4} {'verdict':<7} {'ok':<5} {'KV tok pred':>11} {'KV tok rep':>10} "
        f"{'err %':>6} {'W pred':>7} {'W rep':>7}  reason"
    )
    for case in result["cases"]:
        errors = case.get("errors", {})
        rel = errors.get("kv_tokens_rel")
        print(
            f"{_fmt(case.get('id')):>4} {_fmt(case.get('verdict')):<7} "
            f"{_fmt(case.get('verdict_ok')):<5} {_fmt(case.get('kv_cache_tokens')):>11} "
            f"{_fmt(errors.get('kv_tokens_reported')):>10} "
            f"{'-' if rel is None else f'{100 * rel:.1f}':>6} {_fmt(case.get('weights_gib')):>7} "
            f"{_fmt(case.get('reported', {}).get('weights_gib')):>7}  {case.get('reason', '')}"
        )
    s = result["summary"]
    print(
        f"evaluated {s['evaluated']}/{s['cases']} (skipped {s['skipped']}); verdicts right "
        f"{s['verdict_correct']}/{s['verdict_cases']} (misses: {s['verdict_misses'] or 'none'})"
    )
    print(
        f"KV-token error over {s['kv_tokens_error_cases']} cases: median "
        f"{_fmt(s['kv_tokens_error_median_pct'])}%, p90 {_fmt(s['kv_tokens_error_p90_pct'])}%; "
        f"weights error over {s['weights_error_cases']}: median "
        f"{_fmt(s['weights_error_median_pct'])}%, max {_fmt(s['weights_error_max_pct'])}%"
    )
    return EXIT_OK
