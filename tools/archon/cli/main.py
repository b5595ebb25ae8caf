"""Thin wiring: command modules register parsers; an error becomes one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from archon import __version__
from archon.errors import EXIT_UNUSABLE, ArchonError

EXIT_INTERNAL = 70  # sysexits EX_SOFTWARE

# command -> module. Each module exposes register(subparsers); the parser it adds sets `handler`
# to a function taking the parsed args and returning the exit code. Only the module of the
# command being run is imported, so no command pays for another's dependencies (the preflight
# must answer in well under a second; deploy pulls in the Kubernetes client).
COMMANDS = {
    "toolchain": "archon.cli.toolchain_cmd",
    "lint": "archon.cli.lint",
    "render": "archon.cli.render",
    "validate": "archon.cli.validate",
    "preflight": "archon.cli.preflight",
    "gpus": "archon.cli.gpus",
    "chart": "archon.cli.chart_cmd",
    "bench": "archon.cli.bench",
    "cluster": "archon.cli.cluster",
    "deploy": "archon.cli.deploy",
    "status": "archon.cli.status",
    "uninstall": "archon.cli.uninstall",
    "council": "archon.cli.council",
    "demo": "archon.cli.demo",
    "argocd": "archon.cli.argocd",
    "tekton": "archon.cli.tekton",
}


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and exits 2 on bad flags; keep that, but as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_UNUSABLE, f"{self.prog}: {message}; fix: see `{self.prog} --help`\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All commands, or only `only` when the command line names a known one."""
    parser = _Parser(
        prog="archon",
        description="Put vLLM on one consumer GPU in Kubernetes; prove first that it will start.",
        epilog="Exit codes: 0 clean, 1 problems found, 2 unusable input.",
    )
    parser.add_argument("--version", action="version", version=f"archon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    modules = [COMMANDS[only]] if only in COMMANDS else list(COMMANDS.values())
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list[0] if args_list else None)
    args = parser.parse_args(args_list)
    try:
        code: int = args.handler(args)
    except ArchonError as exc:
        print(exc.line(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug of ours: still one line, the traceback only on request
        if os.environ.get("ARCHON_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc}; fix: rerun with ARCHON_DEBUG=1 "
            "and report the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    raise SystemExit(main())
