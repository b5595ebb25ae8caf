"""`archon bench preflight [--cases FILE.jsonl]`: the memory model against recorded vLLM
start-ups (the replay itself is archon.preflight.benchmark)."""

from __future__ import annotations

import argparse
from typing import Any

from archon.bench.base import BenchResult


def _fmt(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{'id':>4} {'verdict':<7} {'ok':<5} {'KV tok pred':>11} {'KV tok rep':>10} "
        f"{'err %':>6} {'W pred':>7} {'W rep':>7}  reason"
    ]
    for case in result["cases"]:
        errors = case.get("errors", {})
        rel = errors.get("kv_tokens_rel")
        lines.append(
            f"{_fmt(case.get('id')):>4} {_fmt(case.get('verdict')):<7} "
            f"{_fmt(case.get('verdict_ok')):<5} {_fmt(case.get('kv_cache_tokens')):>11} "
            f"{_fmt(errors.get('kv_tokens_reported')):>10} "
            f"{'-' if rel is None else f'{100 * rel:.1f}':>6} {_fmt(case.get('weights_gib')):>7} "
            f"{_fmt(case.get('reported', {}).get('weights_gib')):>7}  {case.get('reason', '')}"
        )
    s = result["summary"]
    lines.append(
        f"evaluated {s['evaluated']}/{s['cases']} (skipped {s['skipped']}, of which "
        f"{s['skipped_no_card']} name no card and print no total); verdicts right "
        f"{s['verdict_correct']}/{s['verdict_cases']} (misses: {s['verdict_misses'] or 'none'})"
    )
    lines.append(
        f"KV-token error over {s['kv_tokens_error_cases']} cases: median "
        f"{_fmt(s['kv_tokens_error_median_pct'])}%, p90 {_fmt(s['kv_tokens_error_p90_pct'])}%; "
        f"weights error over {s['weights_error_cases']}: median "
        f"{_fmt(s['weights_error_median_pct'])}%, max {_fmt(s['weights_error_max_pct'])}%"
    )
    for family, f in s.get("by_family", {}).items():
        lines.append(
            f"  {family:<20} evaluated {f['evaluated']}/{f['cases']}, verdicts {f['verdicts']}, "
            f"KV error median {_fmt(f['kv_tokens_error_median_pct'])}% p90 "
            f"{_fmt(f['kv_tokens_error_p90_pct'])}% over {f['kv_tokens_error_cases']}, weights "
            f"median {_fmt(f['weights_error_median_pct'])}%"
        )
    return lines


class PreflightBenchmark:
    name = "preflight"
    help = "replay vLLM start-up cases through the preflight memory model"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--cases",
            metavar="FILE.jsonl",
            help="one case a line (format: docs/preflight.md; default: the shipped public "
            "start-ups)",
        )
        parser.add_argument(
            "--gpu-profiles",
            action="append",
            default=[],
            metavar="FILE",
            help="extra GPU profile file",
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        from archon.paths import calibration_cases
        from archon.preflight.benchmark import run
        from archon.preflight.profiles import load_profiles

        result = run(args.cases or calibration_cases(), profiles=load_profiles(args.gpu_profiles))
        targets = result["summary"]["targets"]
        met = all(
            bool(targets[k])
            for k in ("kv_median_met", "kv_p90_met", "weights_met", "verdicts_met", "evaluated_met")
        )
        return BenchResult(
            name=self.name,
            target=f"median KV-token error <= {targets['kv_median_pct']:g} %, p90 <= "
            f"{targets['kv_p90_pct']:g} %, weights within {targets['weights_pct']:g} %, "
            "every start/fail verdict right, every case evaluated (but those naming no card)",
            met=met,
            figures=result,
            lines=_table(result),
        )


BENCHMARK = PreflightBenchmark()
