"""`archon uninstall`: remove the release, keep the model-cache claim (and say so)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from archon.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from archon.deploy.install import DEFAULT_NAMESPACE, DEFAULT_RELEASE

    parser = sub.add_parser("uninstall", help="remove the release; the model cache PVC is kept")
    parser.add_argument("--namespace", "-n", default=DEFAULT_NAMESPACE)
    parser.add_argument("--release", default=DEFAULT_RELEASE)
    parser.add_argument("--kubeconfig", type=Path)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.deploy.uninstall import uninstall

    uninstall(args.kubeconfig, args.namespace, args.release, out=sys.stdout)
    return EXIT_OK
