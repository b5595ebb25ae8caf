"""`archon validate -f FILE...`: render each values file and check it with kubeconform -strict."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from archon.cli.render import add_chart_args

    parser = sub.add_parser(
        "validate",
        help="render each values file and validate the manifests (kubeconform -strict, offline)",
        description="Each -f file is its own scenario, rendered over the chart defaults; "
        "with no -f the chart defaults alone are validated. Exit 0 all valid, 1 otherwise.",
    )
    parser.add_argument("-f", "--values", dest="files", action="append", default=[], metavar="FILE")
    add_chart_args(parser)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.validate import validate_scenarios
    from archon.values import read_yaml_file

    for file in args.files:  # unusable input (missing file, bad YAML) stops before any work
        read_yaml_file(file)
    results = validate_scenarios(
        args.files or [None], release=args.release, namespace=args.namespace
    )
    ok = all(r.ok for r in results)
    if args.output == "json":
        report = [
            {
                "file": r.file,
                "ok": r.ok,
                "error": r.error,
                "resources": [dict(asdict(res), ok=res.ok) for res in r.resources],
            }
            for r in results
        ]
        print(json.dumps({"ok": ok, "scenarios": report}, indent=2))
        return EXIT_OK if ok else EXIT_PROBLEMS
    for result in results:
        if result.error:
            prefix = "" if result.error.startswith(result.file) else f"{result.file}: "
            print(prefix + result.error, file=sys.stderr)
        for res in result.resources:
            if not res.ok:
                print(f"{result.file}: {res.kind}/{res.name}: {res.message}", file=sys.stderr)
        if result.ok:
            print(f"{result.file}: {len(result.resources)} resources valid")
    return EXIT_OK if ok else EXIT_PROBLEMS
