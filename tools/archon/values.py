"""Chart values: load user files and merge them over the chart defaults the way helm does."""

from __future__ import annotations

import copy
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


def merge(base: Values, override: Values) -> Values:
    """Helm's coalescing: maps merge key by key, anything else replaces, null removes the key."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def chart_defaults() -> Values:
    return read_yaml_file(chart_dir() / "values.yaml")


def load_values(files: list[str | Path]) -> Values:
    """The values helm would see for `-f file1 -f file2 ...`."""
    values = chart_defaults()
    for file in files:
        values = merge(values, read_yaml_file(file))
    return values


def get_path(values: Values, dotted: str, default: Any = None) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
