"""Flags declared once and shared by every command that talks to a cluster or prints results."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING

from archon.arguments import positive_number as positive_number

if TYPE_CHECKING:
    from archon.kube.config import ClusterTarget

OUTPUT_CHOICES = ("text", "json")

# kubectl's rule for a namespace (a DNS-1123 label) and helm's for a release name (a DNS-1123
# subdomain of at most 53 characters: helm appends suffixes to reach 63).
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAMESPACE = re.compile(rf"^{_LABEL}$")
_RELEASE = re.compile(rf"^{_LABEL}(\.{_LABEL})*$")


def namespace_name(text: str) -> str:
    if len(text) > 63 or not _NAMESPACE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid namespace: at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return text


def release_name(text: str) -> str:
    if len(text) > 53 or not _RELEASE.match(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid release name: at most 53 lowercase letters, digits, '-' "
            "and '.', starting and ending with a letter or digit"
        )
    return text


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
    # here, not at the top: the offline commands (preflight, lint) share this module and must
    # not pay for the helm layer's import
    from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE

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
        group.add_argument("--namespace", "-n", default=DEFAULT_NAMESPACE, type=namespace_name)
    if release:
        group.add_argument(
            "--release", default=DEFAULT_RELEASE, type=release_name, help="helm release name"
        )
    if output:
        add_output(parser)


def target(args: argparse.Namespace) -> ClusterTarget:
    from archon.kube.config import resolve_target

    return resolve_target(args.kubeconfig, args.kube_context)
