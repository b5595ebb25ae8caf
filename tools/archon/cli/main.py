"""Thin wiring: command modules register parsers; an error becomes one line and an exit code."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from archon import __version__
from archon.errors import EXIT_UNUSABLE, ArchonError

# Each module exposes register(subparsers); the parser it adds sets `handler` to a function
# taking the parsed args and returning the exit code. Modules import their heavy dependencies
# inside the handler so that `archon preflight` stays fast.
COMMAND_MODULES = [
    "archon.cli.toolchain_cmd",
    "archon.cli.lint",
    "archon.cli.render",
    "archon.cli.validate",
    "archon.cli.preflight",
    "archon.cli.gpus",
    "archon.cli.chart_cmd",
    "archon.cli.bench",
    "archon.cli.cluster",
    "archon.cli.deploy",
    "archon.cli.status",
    "archon.cli.uninstall",
    "archon.cli.demo",
]


class _Parser(argparse.ArgumentParser):
    """argparse prints usage and exits 2 on bad flags; keep that, but as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_UNUSABLE, f"{self.prog}: {message}; fix: see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="archon", description=__doc__)
    parser.add_argument("--version", action="version", version=f"archon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
    return code


if __name__ == "__main__":
    raise SystemExit(main())
