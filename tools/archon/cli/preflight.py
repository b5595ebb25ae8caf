"""`archon preflight -f values.yaml [--gpu NAME]`: will vLLM start on this card, and how well."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "preflight",
        help="check that the model and its context fit the GPU before deploying",
        description="Verdict PASS/WARN/FAIL with vLLM's memory figures; exit 0 on PASS/WARN, "
        "1 on FAIL, 2 on unusable input.",
    )
    parser.add_argument(
        "-f",
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="values file merged over the chart defaults (repeatable)",
    )
    parser.add_argument("--gpu", metavar="NAME", help="GPU profile (overrides gpu.profile)")
    parser.add_argument(
        "--gpu-profiles",
        action="append",
        default=[],
        metavar="FILE",
        help="extra GPU profile file (also $ARCHON_GPU_PROFILES)",
    )
    parser.add_argument(
        "--model-config", metavar="FILE", help="config.json of a model outside the catalog"
    )
    parser.add_argument(
        "--weights-gib",
        type=options.positive_number,
        metavar="N",
        help="checkpoint size in GiB (with --model-config)",
    )
    parser.add_argument(
        "--safetensors-index",
        metavar="FILE",
        help="model.safetensors.index.json to read the checkpoint size from",
    )
    parser.add_argument(
        "--explain",
        action="store_true",
        help="show the arithmetic line by line, each line naming the vLLM code it follows",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="read the model from the Hugging Face Hub again, even if cached or in the catalog",
    )
    options.add_output(parser, help_json="json: the report as one object on stdout")
    parser.set_defaults(handler=_run)


def refused(values: dict[str, Any], source: str, output: str) -> bool:
    """Values the chart would refuse (its schema, its archetype rules: what lint refuses
    without helm) get a FAIL with those problems and no figures: a memory estimate of values
    that cannot be deployed would only mislead."""
    from archon.lint import values_problems

    rule, problems = values_problems(values, source=source)
    if not problems:
        return False
    if output == "json":
        report = {
            "verdict": "FAIL",
            "gpu": None,
            "weights_gib": None,
            "kv_cache_gib": None,
            "kv_cache_tokens": None,
            "max_concurrency": None,
            "max_model_len_fit": None,
            "problems": [dict(p.as_dict(), level="FAIL", rule=rule) for p in problems],
        }
        print(json.dumps(report, indent=2))
    else:
        what = "the chart's schema" if rule == "schema" else "the chart's archetype rules"
        print(f"preflight: FAIL  the values do not pass {what}")
        for problem in problems:
            print(f"FAIL {problem.line()}")
    return True


def _run(args: argparse.Namespace) -> int:
    from archon.preflight.profiles import load_profiles
    from archon.preflight.report import check_values, render_table
    from archon.values import ValuesSet

    values = ValuesSet.read(args.values).merged
    source = args.values[-1] if len(args.values) == 1 else ", ".join(args.values)
    if refused(values, source, args.output):
        return EXIT_PROBLEMS
    report = check_values(
        values,
        gpu=args.gpu,
        source=source,
        profiles=load_profiles(args.gpu_profiles),
        model_config=args.model_config,
        weights_gib=args.weights_gib,
        safetensors_index=args.safetensors_index,
        refresh=args.refresh,
    )
    if args.output == "json":
        data = report.as_dict()
        if args.explain and report.engine and report.estimate:
            from archon.preflight.explain import steps

            data["explain"] = [s.as_dict() for s in steps(report.engine, report.estimate)]
        print(json.dumps(data, indent=2))
    else:
        print(render_table(report))
        if args.explain and report.engine and report.estimate:
            from archon.preflight.explain import render

            print("\n".join(render(report.engine, report.estimate)))
    return EXIT_PROBLEMS if report.verdict == "FAIL" else EXIT_OK
