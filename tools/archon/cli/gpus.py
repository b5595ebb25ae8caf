"""`archon gpus`: the GPU profiles the preflight knows (built-in plus the user's files)."""

from __future__ import annotations

import argparse
import json

from archon.cli import options
from archon.errors import EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("gpus", help="list the known GPU profiles")
    parser.add_argument(
        "--gpu-profiles",
        action="append",
        default=[],
        metavar="FILE",
        help="extra GPU profile file (also $ARCHON_GPU_PROFILES)",
    )
    options.add_output(parser, help_json="json: the profiles as a list of objects on stdout")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from archon.preflight.profiles import load_profiles

    profiles = list(load_profiles(args.gpu_profiles))
    if args.output == "json":
        print(json.dumps([p.as_dict() for p in profiles], indent=2))
        return EXIT_OK
    header = (
        f"{'name':<20} {'vendor':<7} {'arch':<8} {'memory MiB':>10} {'visible GiB':>11} {'GB/s':>6}"
    )
    print(header)
    for p in profiles:
        print(
            f"{p.name:<20} {p.vendor:<7} {p.arch:<8} {p.memory_mib:>10} {p.visible_gib:>11.2f} "
            f"{p.bandwidth_gbs:>6.0f}"
        )
    return EXIT_OK
