"""`archon uninstall`: remove the release, keep the model-cache claim (and say so)."""

from __future__ import annotations

import argparse
import json
import sys

from archon.cli import options
from archon.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("uninstall", help="remove the release; the model cache PVC is kept")
    options.add_cluster(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.deploy.uninstall import uninstall

    target = options.target(args)
    out = sys.stderr if args.output == "json" else sys.stdout
    print(target.describe(), file=out)
    kept = uninstall(target, args.namespace, args.release, out=out)
    if args.output == "json":
        print(
            json.dumps(
                {
                    "cluster": target.as_dict(),
                    "release": args.release,
                    "namespace": args.namespace,
                    "uninstalled": True,
                    "kept_claims": kept,
                }
            )
        )
    return EXIT_OK
