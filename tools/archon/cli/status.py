"""`archon status`: the release, its pods with node and GPU placement, and its claims."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("status", help="release, pods with GPU placement, model-cache claim")
    options.add_cluster(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.deploy.status import print_status, release_status

    target = options.target(args)
    report = release_status(target, args.namespace, args.release)
    if args.output == "json":
        print(json.dumps({"cluster": target.as_dict(), **asdict(report)}, indent=2))
    else:
        print(target.describe())
        print_status(report, sys.stdout)
    return EXIT_OK if report.ready else EXIT_PROBLEMS
