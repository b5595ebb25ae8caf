"""What `archon argocd` and `archon tekton` share: connecting, the --simulate switch, --timeout,
and turning a follow result into one line, JSON and an exit code."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError, UsageError

if TYPE_CHECKING:
    from archon.gitops.objects import ControllerApi
    from archon.kube.config import ClusterTarget
    from archon.kube.rest import Kube

SIMULATE_CHOICES = ("auto", "on", "off")


def add_common(parser: argparse.ArgumentParser, *, namespace: str, what: str) -> None:
    options.add_cluster(parser, namespace=False, release=False)
    parser.add_argument("--namespace", "-n", default=namespace, help=f"namespace of the {what}")


def add_wait(parser: argparse.ArgumentParser, *, timeout_s: float, controller: str) -> None:
    parser.add_argument(
        "--timeout",
        type=options.positive_number,
        default=timeout_s,
        metavar="SECONDS",
        help=f"how long to follow before giving up with exit 1 (default {timeout_s:.0f})",
    )
    parser.add_argument(
        "--simulate",
        choices=SIMULATE_CHOICES,
        default="auto",
        help=f"run the {controller} SIMULATION inside this command while it follows; auto: on "
        "the local `archon cluster` only (it has the CRDs but no controller); on: refused "
        "(exit 2) on any other cluster",
    )


@dataclass
class Session:
    target: ClusterTarget
    kube: Kube
    out: TextIO  # progress: stderr with --output json, else stdout
    json: bool
    local: bool


def connect(args: argparse.Namespace, api: ControllerApi) -> Session:
    """The cluster the flags name, answering, with the controller's CRDs installed."""
    from archon.kube.client import reach_api
    from archon.kube.rest import Kube

    out = sys.stderr if args.output == "json" else sys.stdout
    target = options.target(args)
    local = _is_local(target)
    if getattr(args, "simulate", "off") == "on" and not local:
        # Before any API call: on a cluster with a real controller, or someone else's, the
        # simulation would act as a second controller on live objects.
        raise UsageError(
            f"--simulate on: the cluster at {target.server} (context {target.context or '-'}) "
            "is not Archon's local cluster; the simulation plays a controller only there",
            key="--simulate",
            fix="drop --simulate (the cluster's own controller does the work) or target the "
            "local cluster (`archon cluster up`, then its kubeconfig)",
        )
    print(target.describe(), file=out, flush=True)
    client = reach_api(target)
    session = Session(target, Kube(client), out, args.output == "json", local)
    api.require_crds(session.kube)
    return session


def _is_local(target: ClusterTarget) -> bool:
    """The target is the local `archon cluster`: its kubeconfig, or a context (exported into
    ~/.kube/config) naming the same API server."""
    from archon.cluster.lifecycle import kubeconfig_path
    from archon.kube.config import resolve_target

    local = kubeconfig_path()
    if any(f.resolve() == local.resolve() for f in target.files):
        return True
    if target.in_cluster or not local.is_file():
        return False
    try:
        server = resolve_target(local).server
    except ArchonError:  # a local kubeconfig being rewritten by `cluster up`: not a match
        return False
    return bool(server) and target.server.rstrip("/") == server.rstrip("/")


def simulating(args: argparse.Namespace, session: Session) -> bool:
    choice = getattr(args, "simulate", "off")
    return choice == "on" or (choice == "auto" and session.local)


def simulation(
    args: argparse.Namespace, session: Session, make: Any
) -> AbstractContextManager[Any]:
    """The simulation as a context (started on enter, stopped on exit), or nothing."""
    if simulating(args, session):
        sim: AbstractContextManager[Any] = make()
        return sim
    return nullcontext()


def finish(session: Session, ok: bool, line: str, report: dict[str, Any]) -> int:
    """Exit 0 or 1; JSON on stdout with --output json, else the one-line verdict."""
    report = {"ok": ok, "cluster": session.target.as_dict(), **report}
    if session.json:
        print(json.dumps(report, indent=2))
    elif ok:
        print(line)
    else:
        print(line, file=sys.stderr)
    return EXIT_OK if ok else EXIT_PROBLEMS
