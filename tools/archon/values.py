"""Chart values: read each user file once, merge them the way helm does, and carry the result.

A `ValuesSet` is built once per command and passed down: lint checks each file over the chart
defaults, the preflight reads `merged`, and helm receives `overrides` on stdin.

Every values file goes through `read_yaml_file`, which bounds what a file may cost before anything
walks it: its size, its nesting, and how far its aliases expand. A values file is data a person
writes; none of these bounds is near what such a file needs.
"""

from __future__ import annotations

import copy
import errno
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from archon.errors import UsageError
from archon.paths import chart_dir

Values = dict[str, Any]

# helm stores a release, values included, in one Secret, and the API server refuses a Secret over
# 1 MiB (MaxSecretSize in k8s.io/kubernetes pkg/apis/core/validation) and any request over
# etcd's 1.5 MiB (--max-request-bytes). A values file above 1 MiB can never be deployed.
MAX_VALUES_BYTES = 1024 * 1024
# Deeper than any chart value (the deepest, a guided-decoding JSON schema, needs a dozen levels);
# the merge and the schema check walk the tree recursively.
MAX_DEPTH = 64
# Values as the file's aliases expand them. Aliases share nodes, but every later step (merge,
# schema check, helm's stdin) walks the expanded tree: a few hundred bytes of nested aliases
# (a "billion laughs") would expand to billions. The chart's own values.yaml has about 200.
MAX_EXPANDED_NODES = 100_000
STDIN = "-"  # `-f -` reads the values from standard input, as helm does

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when built


class _Refused(Exception):
    """A bound the file breaks, with the line it breaks it at."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


class _ValuesLoader(_BaseLoader):  # type: ignore[misc]
    """Safe YAML that JSON (and so helm and the API server) can carry: no NaN or infinity."""

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if math.isnan(value) or math.isinf(value):
            raise _Refused(
                f"{node.value} at line {node.start_mark.line + 1} is not a number JSON can carry "
                "(helm and the API server read values as JSON)",
                "write a finite number, or quote it to pass it as a string",
            )
        return value

    def construct_yaml_int(self, node: ScalarNode) -> int:
        try:
            value: int = super().construct_yaml_int(node)
        except ValueError:  # Python refuses to read integers of more than 4300 digits
            value = 1 << 64
        if value.bit_length() > 63:
            raise _Refused(
                f"the integer at line {node.start_mark.line + 1} does not fit in 64 bits "
                "(helm and the API server read values as JSON numbers)",
                "write a smaller number, or quote it to pass it as a string",
            )
        return value


_ValuesLoader.add_constructor("tag:yaml.org,2002:float", _ValuesLoader.construct_yaml_float)
_ValuesLoader.add_constructor("tag:yaml.org,2002:int", _ValuesLoader.construct_yaml_int)


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _check_graph(root: Node) -> None:
    """Refuse nesting, alias expansion and duplicate keys before anything is constructed.

    The walk is iterative (no recursion to exhaust) and counts each shared node once per use,
    which is what expanding the aliases would cost, memoised so the count itself stays cheap.
    """
    expanded: dict[int, int] = {}
    stack: list[tuple[Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if id(node) in expanded:
            continue
        if depth > MAX_DEPTH:
            raise _Refused(
                f"nesting deeper than {MAX_DEPTH} levels at line {_line(node)}",
                "flatten the values; no chart value nests this deep",
            )
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            expanded[id(node)] = 1
            continue
        if not children_done:
            if isinstance(node, MappingNode):
                _check_keys(node)
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in children if id(c) not in expanded)
            continue
        total = 1 + sum(expanded.get(id(c), 1) for c in children)
        if total > MAX_EXPANDED_NODES:
            raise _Refused(
                f"its aliases expand to more than {MAX_EXPANDED_NODES} values (line {_line(node)})",
                "write the values out instead of nesting aliases (&anchor / *alias)",
            )
        expanded[id(node)] = total


def _check_keys(node: MappingNode) -> None:
    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        ident = (key.tag, key.value)
        if ident in seen:
            raise _Refused(
                f"duplicate key {key.value!r} at line {_line(key)} (first at line {seen[ident]})",
                "keep one of them: YAML parsers disagree on which one wins",
            )
        seen[ident] = _line(key)


def _read_text(path: str | Path) -> str:
    """The file's text, read once and at most MAX_VALUES_BYTES + 1 bytes of it."""
    if str(path) == STDIN:
        raw = sys.stdin.buffer.read(MAX_VALUES_BYTES + 1)
    else:
        try:
            with open(path, "rb") as stream:
                raw = stream.read(MAX_VALUES_BYTES + 1)
        except OSError as exc:
            problem, fix = _os_problem(exc)
            raise UsageError(problem, source=str(path), fix=fix) from None
    if len(raw) > MAX_VALUES_BYTES:
        raise UsageError(
            f"larger than {MAX_VALUES_BYTES // 1024} KiB: helm keeps values in the release "
            "Secret, which the API server caps at 1 MiB",
            source=str(path),
            fix="keep large data (prompts, schemas) out of values, or split the file",
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise UsageError(
            f"contains a NUL byte at line {line}: not a text file",
            source=str(path),
            fix="pass a YAML text file (saved as UTF-8)",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(
            "not a UTF-8 text file", source=str(path), fix="save it as UTF-8"
        ) from None


# What an unreadable values file's errno means, and what to do about it.
_OS_PROBLEMS = {
    errno.ENOENT: ("file not found", "pass an existing values file (or `-f -` for standard input)"),
    errno.EISDIR: ("is a directory", "pass a values file"),
    errno.ELOOP: (
        "symlink loop: the link points back at itself",
        "point the link at a values file",
    ),
    errno.EACCES: ("permission denied", "make the file readable (chmod u+r) or pass a copy"),
    errno.EPERM: ("permission denied", "make the file readable (chmod u+r) or pass a copy"),
}


def _os_problem(exc: OSError) -> tuple[str, str]:
    """(problem, fix) for a values file the OS would not read."""
    known = _OS_PROBLEMS.get(exc.errno or 0)
    if known is not None:
        return known
    return (
        f"cannot be read: {exc.strerror or type(exc).__name__}",
        "pass a readable values file",
    )


def parse_yaml(text: str, source: str) -> Any:
    """One YAML document within the bounds above; any problem is one UsageError line."""
    loader = _ValuesLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_graph(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise UsageError(exc.message, source=source, fix=exc.fix) from None
    except yaml.YAMLError as exc:
        raise UsageError(_yaml_problem(exc), source=source, fix="correct the YAML syntax") from None
    except RecursionError:
        raise UsageError(
            f"nesting deeper than {MAX_DEPTH} levels",
            source=source,
            fix="flatten the values; no chart value nests this deep",
        ) from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.reader.ReaderError):
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        problem = f"character #x{code:04x} is not allowed" if code is not None else None
        where = f" at byte {exc.position}"
    if problem is None and not mark:
        problem = str(exc).splitlines()[0] if str(exc) else None
    return f"invalid YAML{where}: {problem or 'unreadable document'}"


def read_yaml_file(path: str | Path) -> Values:
    """Read one values file (`-`: standard input); anything but a mapping (or an empty file) is
    unusable input."""
    data = parse_yaml(_read_text(path), _display(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"top level is a {type(data).__name__}, not a mapping",
            source=_display(path),
            fix="write values as `key: value` pairs at the top level",
        )
    return data


def _display(path: str | Path) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


def merge(base: Values, override: Values, *, keep_nulls: bool = False) -> Values:
    """Helm's coalescing: maps merge key by key, anything else replaces.

    A null removes the key, as helm does against the chart defaults. Between user files
    (`keep_nulls=True`, repeated `-f`) the null is kept instead, so that it still reaches helm
    and removes the default there.
    """
    result = copy.deepcopy(base)
    for key, value in override.items():
        if value is None and not keep_nulls:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value, keep_nulls=keep_nulls)
        else:
            result[key] = copy.deepcopy(value)
    return result


@dataclass(frozen=True)
class ValuesFile:
    path: Path
    data: Values


@dataclass(frozen=True)
class ValuesSet:
    """The user's values files, each read once, and what they add up to."""

    chart: Path
    defaults: Values  # the chart's values.yaml
    files: tuple[ValuesFile, ...]  # in command-line order
    overrides: Values  # the files merged, nulls kept: what helm receives on stdin
    merged: Values  # overrides over the defaults: what lint and the preflight check

    @classmethod
    def read(
        cls,
        files: Sequence[str | Path] = (),
        *,
        chart: str | Path | None = None,
        overrides: Values | None = None,
    ) -> ValuesSet:
        """Read every file (UsageError on the first unusable one) and the chart defaults."""
        chart_path = Path(chart) if chart is not None else chart_dir()
        if sum(1 for f in files if str(f) == STDIN) > 1:
            raise UsageError(
                "standard input is named twice", key="-f -", fix="pass `-f -` once, like helm"
            )
        parsed = tuple(ValuesFile(Path(_display(f)), read_yaml_file(f)) for f in files)
        if overrides:
            parsed += (ValuesFile(Path("(overrides)"), overrides),)
        return cls.of(chart_path, read_yaml_file(chart_path / "values.yaml"), parsed)

    @classmethod
    def of(cls, chart: Path, defaults: Values, files: tuple[ValuesFile, ...]) -> ValuesSet:
        user: Values = {}
        for file in files:
            user = merge(user, file.data, keep_nulls=True)
        return cls(chart, defaults, files, user, merge(defaults, user))

    @property
    def source(self) -> str:
        """The files as a problem line names them ("" for the chart defaults alone)."""
        return ", ".join(str(f.path) for f in self.files)

    def each(self) -> list[ValuesSet]:
        """One set per file, each over the chart defaults alone (how `archon lint` reads them)."""
        return [ValuesSet.of(self.chart, self.defaults, (file,)) for file in self.files]


def load_values(files: Sequence[str | Path]) -> Values:
    """The values helm would see for `-f file1 -f file2 ...`."""
    return ValuesSet.read(files).merged


def get_path(values: Values, dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
