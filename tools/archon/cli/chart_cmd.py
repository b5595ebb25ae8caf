"""`archon chart docs --write|--check`: the chart's values table and schema, kept current.
`archon chart package`: the chart, strictly linted, as a .tgz for a chart repository or registry."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from archon.cli import options
from archon.errors import EXIT_OK, ProblemsFound


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "chart", help="maintain the Helm chart (values docs and schema) and package it"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    docs = actions.add_parser(
        "docs", help="regenerate (--write) or verify (--check) the README values table and schema"
    )
    mode = docs.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the table in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when anything is stale")
    docs.add_argument(
        "--chart", type=Path, default=None, help="chart folder (default: the packaged chart)"
    )
    docs.set_defaults(handler=_docs)

    pack = actions.add_parser(
        "package", help="helm lint --strict, then helm package into a versioned .tgz"
    )
    pack.add_argument(
        "-d",
        "--destination",
        type=Path,
        default=Path("."),
        help="folder for the .tgz (default: the current folder)",
    )
    pack.add_argument(
        "--chart", type=Path, default=None, help="chart folder (default: the packaged chart)"
    )
    options.add_output(pack)
    pack.set_defaults(handler=_package)


def _docs(args: argparse.Namespace) -> int:
    from archon.chart import docs
    from archon.paths import chart_dir

    chart = args.chart if args.chart is not None else chart_dir()
    if args.check:
        problems = docs.check(chart)
        if problems:
            raise ProblemsFound(problems)
        print(f"{chart}: values table and schema are current")
        return EXIT_OK
    changed, problems = docs.write(chart)
    print(f"{chart / docs.README}: {'rewritten' if changed else 'already current'}")
    if problems:
        raise ProblemsFound(problems)
    return EXIT_OK


def _package(args: argparse.Namespace) -> int:
    from archon.chart.package import package
    from archon.paths import chart_dir

    chart = args.chart if args.chart is not None else chart_dir()
    if args.output == "text":
        print(f"linting {chart} (helm lint --strict), then packaging", flush=True)
    result = package(chart, args.destination)
    if args.output == "json":
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(result.path)
    return EXIT_OK
