"""Values checked against the chart's values.schema.json.

Each jsonschema error becomes one Problem: the key path as a user writes it in YAML
(`model.maxModelLen`, `tolerations[0].key`), the bad value, and a fix worded for that check.
Render checks the schema before helm runs and lint reports it; both read it from here.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from archon.errors import Problem, UsageError, format_value
from archon.paths import chart_dir
from archon.values import Values


@cache
def _schema(path: str) -> dict[str, Any]:
    file = Path(path)
    if not file.is_file():
        raise UsageError(
            "the chart has no values.schema.json", source=path, fix="restore charts/archon"
        )
    data: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    return data


def load_schema(chart: Path | None = None) -> dict[str, Any]:
    return _schema(str((chart or chart_dir()) / "values.schema.json"))


def key_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _fix(error: Any) -> tuple[str, str, Any]:
    """(message, fix, value) for one jsonschema ValidationError."""
    validator = error.validator
    expected = error.validator_value
    value = error.instance
    shown = format_value(value)
    if validator == "additionalProperties":
        unknown = _unknown_keys(error)[0] if _unknown_keys(error) else "?"
        return f"unknown key {unknown!r}", _unknown_fix(error, unknown), unknown
    if validator == "enum":
        options = ", ".join(format_value(v) for v in expected)
        return f"{shown} is not allowed", f"use one of: {options}", value
    if validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return (
            f"{shown} is not of type {' or '.join(kinds)}",
            f"write {_article(kinds[0])} {' or '.join(kinds)}",
            value,
        )
    if validator in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {
            "minimum": ">=",
            "exclusiveMinimum": ">",
            "maximum": "<=",
            "exclusiveMaximum": "<",
        }
        bound = f"{words[validator]} {expected}"
        return f"{shown} is out of range", f"use a value {bound}", value
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else str(expected)
        return (
            f"required key {missing!r} is missing (a null removes the chart's default)",
            f"set {missing}",
            missing,
        )
    if validator == "pattern":
        described = error.schema.get("description")
        return (
            f"{shown} does not match {expected}",
            f"use {described}" if described else f"use a value matching {expected}",
            value,
        )
    if validator in ("minLength", "maxLength", "minItems", "maxItems"):
        return f"{shown} breaks {validator} {expected}", f"respect {validator} {expected}", value
    if validator == "uniqueItems":
        return f"{shown} has duplicates", "make every entry unique", value
    if validator in ("oneOf", "anyOf") and error.context:
        best = min(error.context, key=lambda e: len(list(e.relative_path)))
        return _fix(best)
    description = error.schema.get("description", "")
    return error.message, description or "see charts/archon/README.md for this key", value


def _article(word: str) -> str:
    return "an" if word[:1] in ("a", "e", "i", "o", "u") else "a"


def _unknown_keys(error: Any) -> list[str]:
    allowed = set((error.schema.get("properties") or {}).keys())
    value = error.instance
    return sorted(str(k) for k in set(value) - allowed) if isinstance(value, dict) else []


def _unknown_fix(error: Any, unknown: str) -> str:
    allowed = sorted((error.schema.get("properties") or {}).keys())
    # A key the chart moved names its new place; any other gets the nearest spelling.
    moved = (error.schema.get("x-archon-moved") or {}).get(unknown)
    close = [moved] if moved else difflib.get_close_matches(unknown, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}remove it or use one of: {', '.join(allowed)}"


def schema_problems(
    values: Values, *, source: str = "", chart: Path | None = None
) -> list[Problem]:
    from jsonschema import validators

    schema = load_schema(chart)
    validator_cls = validators.validator_for(schema)
    validator = validator_cls(schema)
    problems = []
    for error in sorted(validator.iter_errors(values), key=lambda e: list(map(str, e.path))):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            # jsonschema reports every unknown key of one map as one error: one line each.
            for unknown in _unknown_keys(error) or ["?"]:
                problems.append(
                    Problem(
                        key_path([*path, unknown]),
                        f"unknown key {unknown!r}",
                        _unknown_fix(error, unknown),
                        value=unknown,
                        source=source,
                    )
                )
            continue
        message, fix, value = _fix(error)
        if error.validator == "required" and isinstance(value, str):
            path.append(value)  # point at the key itself, not at its parent
            dotted = key_path(path)
            fix, value = f"set {dotted}, or remove the `{value}: null` line", None
        problems.append(Problem(key_path(path), message, fix, value=value, source=source))
    return problems
