"""`archon deploy -f values.yaml`: lint + preflight, then install/upgrade, rollout followed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from archon.cli import options
from archon.errors import EXIT_OK, ArchonError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from archon.deploy.install import DEFAULT_TIMEOUT_S

    parser = sub.add_parser(
        "deploy",
        help="lint, preflight, then helm upgrade --install with --wait and rollback on failure",
        description="Nothing is applied when lint or the preflight finds a problem. "
        "Exit 0 deployed, 1 problems or a failed (rolled back) rollout, 2 unusable input, "
        "130 interrupted (helm is stopped and rolls back first).",
    )
    parser.add_argument(
        "-f", "--values", dest="files", action="append", required=True, metavar="FILE"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="server-side dry-run: real admission, no changes"
    )
    parser.add_argument(
        "--timeout",
        type=options.positive_number,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for Ready before rolling back (default {DEFAULT_TIMEOUT_S})",
    )
    parser.add_argument(
        "--recover",
        action="store_true",
        help="first end an operation an interrupted deploy left pending: roll back to the last "
        "deployed revision, or uninstall a release never deployed (the model cache is kept)",
    )
    options.add_cluster(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.output != "json":
        return _run(args)
    # A script reads exactly one JSON object on stdout, on failure too; the line stays on stderr
    # as for text.
    try:
        return _run(args)
    except ArchonError as exc:
        print(json.dumps({"error": exc.line(), "exit_code": exc.exit_code}))
        raise


def _run(args: argparse.Namespace) -> int:
    from archon.deploy.install import DeployOptions, deploy, summary_json

    opts = DeployOptions(
        values_files=[Path(f) for f in args.files],
        namespace=args.namespace,
        release=args.release,
        target=options.target(args),
        dry_run=args.dry_run,
        timeout_s=max(1, round(args.timeout)),  # helm takes whole seconds here
        recover=args.recover,
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
