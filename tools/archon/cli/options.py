"""Flags declared once and shared by every command that talks to a cluster or prints results."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE

if TYPE_CHECKING:
    from archon.kube.config import ClusterTarget

OUTPUT_CHOICES = ("text", "json")


def add_output(parser: argparse.ArgumentParser, *, help_json: str = "") -> None:
    parser.add_argument(
        "--output",
        "-o",
        choices=OUTPUT_CHOICES,
        default="text",
        help=help_json or "json: one object on stdout for scripts; progress goes to stderr",
    )


def add_cluster(
    parser: argparse.ArgumentParser,
    *,
    namespace: bool = True,
    release: bool = True,
    output: bool = True,
) -> None:
    """--kubeconfig/--kube-context (kubectl's order), and --namespace/--release/--output."""
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--kubeconfig",
        type=Path,
        metavar="FILE",
        help="default: $KUBECONFIG, then ~/.kube/config, then the in-cluster service account",
    )
    group.add_argument(
        "--kube-context", metavar="NAME", help="default: the kubeconfig's current-context"
    )
    if namespace:
        group.add_argument("--namespace", "-n", default=DEFAULT_NAMESPACE)
    if release:
        group.add_argument("--release", default=DEFAULT_RELEASE, help="helm release name")
    if output:
        add_output(parser)


def target(args: argparse.Namespace) -> ClusterTarget:
    from archon.kube.config import resolve_target

    return resolve_target(args.kubeconfig, args.kube_context)
