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
        "with no -f the chart defaults alone are validated.",
    )
    parser.add_argument("-f", "--values", dest="files", action="append", default=[], metavar="FILE")
    add_chart_args(parser)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.errors import ArchonError
    from archon.render import render_chart
    from archon.validate import validate_manifest

    scenarios: list[str | None] = list(args.files) or [None]
    report = []
    ok = True
    for scenario in scenarios:
        name = scenario or "(chart defaults)"
        entry: dict[str, object] = {"file": name, "ok": False, "error": "", "resources": []}
        try:
            rendered = render_chart(
                [scenario] if scenario else [], release=args.release, namespace=args.namespace
            )
            results = validate_manifest(rendered.manifest)
            entry["resources"] = [dict(asdict(r), ok=r.ok) for r in results]
            entry["ok"] = bool(results) and all(r.ok for r in results)
            if not results:
                entry["error"] = "no resources rendered"
        except ArchonError as exc:
            if exc.exit_code != EXIT_PROBLEMS:
                raise
            entry["error"] = exc.line()
        ok = ok and bool(entry["ok"])
        report.append(entry)
    if args.output == "json":
        print(json.dumps({"ok": ok, "scenarios": report}, indent=2))
    else:
        for entry in report:
            resources = entry["resources"]
            assert isinstance(resources, list)
            if entry["error"]:
                print(f"{entry['file']}: {entry['error']}", file=sys.stderr)
            for r in resources:
                if not r["ok"]:
                    print(
                        f"{entry['file']}: {r['kind']}/{r['name']}: {r['message']}", file=sys.stderr
                    )
            if entry["ok"]:
                print(f"{entry['file']}: {len(resources)} resources valid")
    return EXIT_OK if ok else EXIT_PROBLEMS
