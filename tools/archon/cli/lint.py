"""`archon lint FILE...`: schema and preflight problems, one line each."""

from __future__ import annotations

import argparse
import json
import sys

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "lint",
        help="check values files against the chart schema and the GPU memory preflight",
        description="Each values file is merged over the chart defaults and checked on its own. "
        "Exit 0 clean, 1 problems found, 2 unusable input.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="values files")
    parser.add_argument("--gpu", help="GPU profile for the preflight (default: gpu.profile)")
    parser.add_argument(
        "--no-preflight", action="store_true", help="schema only, skip the memory preflight"
    )
    options.add_output(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.lint import lint_values, lint_warnings
    from archon.values import ValuesSet

    values = ValuesSet.read(args.files)
    problems = lint_values(values, preflight=not args.no_preflight, gpu=args.gpu)
    # warnings never change the exit code: 0 clean or warnings only, 1 problems
    warnings = lint_warnings(values)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "ok": not problems,
                    "problems": [dict(p.as_dict(), file=p.source) for p in problems],
                    "warnings": [dict(w.as_dict(), file=w.source) for w in warnings],
                },
                indent=2,
            )
        )
    else:
        for warning in warnings:
            print(f"WARN {warning.line()}", file=sys.stderr)
        for problem in problems:
            print(problem.line(), file=sys.stderr)
        if not problems:
            print(f"{len(args.files)} file(s) clean")
    return EXIT_PROBLEMS if problems else EXIT_OK
