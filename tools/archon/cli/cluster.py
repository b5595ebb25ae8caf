"""`archon cluster up|down|status`: the local control plane with fake GPU nodes."""

from __future__ import annotations

import argparse
import json
import sys
import time

from archon.cli import options
from archon.errors import EXIT_OK, EXIT_PROBLEMS


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "cluster",
        help="a local Kubernetes control plane with fake GPU nodes (kwok), on loopback",
        description="Real kube-apiserver, controller-manager and scheduler on etcd; kwok plays "
        "the kubelets of fake GPU nodes. The kubeconfig stays in the Archon cache.",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    up = verbs.add_parser("up", help="start the cluster (idempotent) and register GPU nodes")
    up.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help="GPU node profile, repeatable (default: 'RTX 5080' and 'RX 7900 XTX')",
    )
    up.add_argument(
        "--export-kubeconfig",
        action="store_true",
        help="also merge the context into ~/.kube/config (never done otherwise)",
    )
    up.add_argument(
        "--gitops",
        action="store_true",
        help="also install the upstream ArgoCD and Tekton CRDs (no controllers: `archon argocd` "
        "and `archon tekton` run their SIMULATION against this cluster)",
    )
    up.set_defaults(handler=_up)
    down = verbs.add_parser("down", help="stop and delete the cluster; nothing keeps running")
    down.set_defaults(handler=_down)
    status = verbs.add_parser("status", help="is it running; nodes, GPUs and their use")
    options.add_output(status)
    status.set_defaults(handler=_status)


def _up(args: argparse.Namespace) -> int:
    from archon.cluster.lifecycle import up

    start = time.perf_counter()
    info = up(args.profile, out=sys.stdout, export_kubeconfig=args.export_kubeconfig)
    if args.gitops:
        _install_gitops_crds()
    _print(info)
    print(f"up in {time.perf_counter() - start:.1f} s; export KUBECONFIG={info.kubeconfig}")
    return EXIT_OK


def _install_gitops_crds() -> None:
    from archon.cluster.lifecycle import kubeconfig_path
    from archon.gitops.setup import install_gitops
    from archon.kube.client import api_client
    from archon.kube.rest import Kube

    install_gitops(Kube(api_client(kubeconfig_path())), out=sys.stdout)
    print(
        "CRDs only, no controllers: `archon argocd sync` and `archon tekton run` run the ArgoCD "
        "and Tekton SIMULATIONs (archon.simulation) inside the command on this cluster"
    )


def _down(args: argparse.Namespace) -> int:
    from archon.cluster.lifecycle import component_pids, down

    down(out=sys.stdout)
    left = component_pids()
    if left:
        print(f"still running: {left}", file=sys.stderr)
        return EXIT_PROBLEMS
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from archon.cluster.lifecycle import cluster_status

    info = cluster_status()
    if args.output == "json":
        print(
            json.dumps(
                {
                    "running": info.running,
                    "server": info.server,
                    "version": info.version,
                    "kubeconfig": str(info.kubeconfig),
                    "pids": info.pids,
                    "nodes": [
                        {
                            "name": n.name,
                            "profile": n.profile,
                            "resource": n.resource,
                            "capacity": n.capacity,
                            "allocated": n.allocated,
                            "ready": n.ready,
                        }
                        for n in info.nodes
                    ],
                },
                indent=2,
            )
        )
    else:
        _print(info)
    return EXIT_OK if info.running else EXIT_PROBLEMS


def _print(info: object) -> None:
    from archon.cluster.lifecycle import ClusterInfo

    assert isinstance(info, ClusterInfo)
    if not info.running:
        print(f"cluster: {info.detail}")
        return
    print(
        f"cluster: running, Kubernetes {info.version} at {info.server} "
        f"({len(info.pids)} processes), kubeconfig {info.kubeconfig}"
    )
    for node in info.nodes:
        gpu = f"{node.resource} {node.allocated}/{node.capacity} in use" if node.resource else ""
        state = "Ready" if node.ready else "NotReady"
        print(f"  node {node.name} [{node.profile or '-'}] {state} {gpu}")
