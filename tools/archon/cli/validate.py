"""`archon validate -f FILE...`: render each values file and check it with kubeconform -strict."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from archon.cli import options
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
    parser.add_argument(
        "--manifests",
        nargs="+",
        default=[],
        metavar="PATH",
        help="also (without -f: only) validate these manifest files or folders, for example "
        "argocd/ ci/tekton/; ArgoCD and Tekton kinds against the pinned upstream CRDs",
    )
    add_chart_args(parser)
    options.add_output(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.validate import validate_files, validate_scenarios

    # Every file is read first: unusable input (missing file, bad YAML) stops before any work.
    results = (
        validate_scenarios(args.files or [None], release=args.release, namespace=args.namespace)
        if args.files or not args.manifests
        else []
    )
    manifests = validate_files(args.manifests) if args.manifests else []
    ok = all(r.ok for r in results) and all(r.ok for r in manifests)
    if args.output == "json":
        report: dict[str, object] = {"ok": ok}
        if results or not manifests:
            report["scenarios"] = [
                {
                    "file": r.file,
                    "ok": r.ok,
                    "error": r.error,
                    "resources": [dict(asdict(res), ok=res.ok) for res in r.resources],
                }
                for r in results
            ]
        if manifests:
            report["manifests"] = [dict(asdict(r), ok=r.ok) for r in manifests]
        print(json.dumps(report, indent=2))
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
    per_file: dict[str, list[bool]] = {}
    for res in manifests:
        per_file.setdefault(res.file, []).append(res.ok)
        if not res.ok:
            print(f"{res.file}: {res.kind}/{res.name}: {res.message}", file=sys.stderr)
    for file, oks in per_file.items():
        if all(oks):
            print(f"{file}: {len(oks)} resources valid")
    return EXIT_OK if ok else EXIT_PROBLEMS
