"""Chart values: read each user file once, merge them the way helm does, and carry the result.

A `ValuesSet` is built once per command and passed down: lint checks each file over the chart
defaults, the preflight reads `merged`, and helm receives `overrides` on stdin.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archon.errors import UsageError
from archon.paths import chart_dir

Values = dict[str, Any]


def read_yaml_file(path: str | Path) -> Values:
    """Read one values file; anything but a mapping (or an empty file) is unusable input."""
    file = Path(path)
    if file.is_dir():
        raise UsageError("is a directory", source=str(path), fix="pass a values file")
    if not file.is_file():
        raise UsageError(
            "file not found", key="", source=str(path), fix="pass an existing values file"
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(
            f"invalid YAML{where}: {problem}", source=str(path), fix="correct the YAML syntax"
        ) from exc
    except UnicodeDecodeError as exc:
        raise UsageError("not a UTF-8 text file", source=str(path), fix="save it as UTF-8") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            f"top level is a {type(data).__name__}, not a mapping",
            source=str(path),
            fix="write values as `key: value` pairs at the top level",
        )
    return data


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
        parsed = tuple(ValuesFile(Path(f), read_yaml_file(f)) for f in files)
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
