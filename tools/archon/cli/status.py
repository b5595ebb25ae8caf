"""`archon status`: the release, its pods with node and GPU placement, and its claims."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from archon.deploy.install import DEFAULT_NAMESPACE, DEFAULT_RELEASE

    parser = sub.add_parser("status", help="release, pods with GPU placement, model-cache claim")
    parser.add_argument("--namespace", "-n", default=DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--kubeconfig", type=Path)
    parser.add_argument("--output", choices=["text", "json"], default="text")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.deploy.status import print_status, release_status

    report = release_status(args.kubeconfig, args.namespace, args.release)
    if args.output == "json":
        print(json.dumps(asdict(report), indent=2))
    else:
        print_status(report, sys.stdout)
    return EXIT_OK if report.ready else EXIT_PROBLEMS
