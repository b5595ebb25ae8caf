"""`archon deploy -f values.yaml`: lint + preflight, then install/upgrade, rollout followed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archon.cli import options
from archon.errors import EXIT_OK


def positive_seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from archon.deploy.install import DEFAULT_TIMEOUT_S

    parser = sub.add_parser(
        "deploy",
        help="lint, preflight, then helm upgrade --install with --wait and rollback on failure",
        description="Nothing is applied when lint or the preflight finds a problem. "
        "Exit 0 deployed, 1 problems or a failed (rolled back) rollout, 2 unusable input.",
    )
    parser.add_argument(
        "-f", "--values", dest="files", action="append", required=True, metavar="FILE"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="server-side dry-run: real admission, no changes"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for Ready before rolling back (default {DEFAULT_TIMEOUT_S})",
    )
    options.add_cluster(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.deploy.install import DeployOptions, deploy, summary_json

    opts = DeployOptions(
        values_files=[Path(f) for f in args.files],
        namespace=args.namespace,
        release=args.release,
        target=options.target(args),
        dry_run=args.dry_run,
        timeout_s=args.timeout,
    )
    result = deploy(opts, out=sys.stderr if args.output == "json" else sys.stdout)
    if args.output == "json":
        print(summary_json(result))
        return EXIT_OK
    if result.status == "dry-run":
        return EXIT_OK
    print(
        f"release {result.release!r} revision {result.revision} {result.status} "
        f"in {result.elapsed_s:.1f} s"
    )
    if result.endpoint:
        print(f"endpoint (in cluster): {result.endpoint}")
    if result.notes:
        print("\nNOTES:\n" + result.notes)
    return EXIT_OK
