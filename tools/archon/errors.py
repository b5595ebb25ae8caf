"""One error hierarchy for everything the user must see.

Every error renders as a single line naming what is wrong, the offending value and the fix.
The CLI turns an ArchonError into that line and its exit code; nothing else reaches the user
as a traceback.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

# Exit codes shared by every command (documented in the README).
EXIT_OK = 0
EXIT_PROBLEMS = 1  # the input was read and is wrong (lint problems, preflight FAIL, failed deploy)
EXIT_UNUSABLE = 2  # the input could not be used at all (missing file, invalid YAML, bad flag)


def format_value(value: Any) -> str:
    """Render a value the way the user wrote it, short enough for one line."""
    if isinstance(value, str):
        text = repr(value[:81])
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list, tuple, set)):
        text = _SHORT.repr(value)  # bounded: a whole values tree is never stringified
    elif isinstance(value, int) and value.bit_length() > 128:
        text = f"an integer of {value.bit_length()} bits"  # str() refuses > 4300 digits
    else:
        text = str(value)[:81]
    return text if len(text) <= 80 else text[:77] + "..."


def _short_repr() -> reprlib.Repr:
    short = reprlib.Repr()
    short.maxlevel = 2
    short.maxdict = short.maxlist = short.maxtuple = short.maxset = 4
    short.maxstring = short.maxother = short.maxlong = 80
    return short


_SHORT = _short_repr()


@dataclass(frozen=True)
class Problem:
    """One finding about the user's input: where, what, and how to fix it."""

    key: str
    message: str
    fix: str
    value: Any = None
    source: str = ""  # the file it came from, when there is one

    def line(self) -> str:
        where = f"{self.source}: " if self.source else ""
        key = self.key or "(root)"
        return f"{where}{key}: {self.message}; fix: {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "message": self.message, "fix": self.fix}


class ArchonError(Exception):
    """Base of every error the CLI shows to a user."""

    exit_code = EXIT_PROBLEMS

    def __init__(self, message: str, *, fix: str = "", key: str = "", source: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.key = key
        self.source = source

    def line(self) -> str:
        parts = []
        if self.source:
            parts.append(f"{self.source}: ")
        if self.key:
            parts.append(f"{self.key}: ")
        parts.append(self.message)
        if self.fix:
            parts.append(f"; fix: {self.fix}")
        return "".join(parts)


class UsageError(ArchonError):
    """The input cannot be used at all: missing file, unreadable YAML, unknown flag value."""

    exit_code = EXIT_UNUSABLE


class ProblemsFound(ArchonError):
    """The input was read and has problems; each is reported on its own line."""

    exit_code = EXIT_PROBLEMS

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        super().__init__(summary or f"{len(problems)} problem(s) found")
        self.problems = problems

    def line(self) -> str:
        return "\n".join(p.line() for p in self.problems)


class ToolchainError(ArchonError):
    """A pinned tool could not be built, found or run."""

    exit_code = EXIT_UNUSABLE


class CommandFailed(ArchonError):
    """An external tool (helm, kubeconform, ...) ran and failed."""

    exit_code = EXIT_PROBLEMS
