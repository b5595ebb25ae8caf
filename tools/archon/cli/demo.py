"""`archon demo`: the main job (archon.demo). Bootstrap, check every shipped profile, render,
and deploy onto the local cluster; end with a one-screen summary."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the main job: bootstrap, check, render (and deploy)")
    parser.add_argument(
        "--no-cluster", action="store_true", help="stop after rendering; no local cluster"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from archon.demo import run_demo

    return run_demo(cluster=not args.no_cluster)
