"""The chart's values table and schema, kept current from the `# --` comments in values.yaml.

helm-docs conventions (https://github.com/norwoodj/helm-docs): a `# -- text` comment directly
above a key documents it, following `#` lines continue the text, `# @default -- text` replaces
the shown default. A documented map covers its children, so free-form maps (`resources`,
`ingress.annotations`) are one row.

values.schema.json is written by hand (it carries constraints no comment can express); the checker
only proves that it and values.yaml describe the same keys, that every object is closed with
`additionalProperties: false`, and that the defaults validate. A schema property may be absent
from values.yaml only when it says so with `"x-archon-optional": true` (for example
`strategy.rollingUpdate`, which the default Recreate strategy must not carry).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from archon.errors import Problem, UsageError
from archon.values import read_yaml_file

README = "README.md"
VALUES = "values.yaml"
SCHEMA = "values.schema.json"
TABLE_START = "<!-- archon:values-table:start -->"
TABLE_END = "<!-- archon:values-table:end -->"
OPTIONAL_MARK = "x-archon-optional"
WRITE_FIX = "run `archon chart docs --write` (make docs)"

_KEY = re.compile(r"""^(?P<key>"[^"]*"|'[^']*'|[A-Za-z0-9_][^:#]*?)\s*:(?:\s+(?P<value>.*))?$""")
_BLOCK_SCALAR = re.compile(r"^[|>][-+0-9]*\s*(#.*)?$")

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class KeyLine:
    """One key of values.yaml as written: where it is and its `# --` documentation."""

    path: Path_
    line: int
    description: str | None
    default_text: str | None  # from `# @default --`


@dataclass(frozen=True)
class Row:
    key: str
    type: str
    default: str
    description: str


def dotted(path: Path_) -> str:
    """`a.b`, quoting segments that hold dots or slashes (annotation keys)."""
    return ".".join(f'"{p}"' if re.search(r"[./\s]", p) else p for p in path)


def _parse_doc(comments: list[str]) -> tuple[str | None, str | None]:
    """The `# --` block closest to the key, and its `# @default --` override."""
    start = None
    for index, text in enumerate(comments):
        if text.startswith("# --"):
            start = index
    if start is None:
        return None, None
    parts: list[str] = []
    default_text = None
    for index, text in enumerate(comments[start:]):
        body = text[4:] if index == 0 else text[1:]
        if body.strip().startswith("@default --"):
            default_text = body.strip()[len("@default --") :].strip()
            continue
        parts.append(body.strip())
    return " ".join(p for p in parts if p), default_text


def scan_keys(text: str) -> list[KeyLine]:
    """Every mapping key of a values file with its path, by indentation.

    List items and block scalars are skipped whole: the keys of a list of maps are data, not values
    of the chart.
    """
    stack: list[tuple[int, str]] = []
    comments: list[str] = []
    skip_deeper_than: int | None = None
    keys: list[KeyLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            comments = []
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        if skip_deeper_than is not None:
            in_list = indent == skip_deeper_than and stripped.startswith("-")
            if indent > skip_deeper_than or in_list:
                comments = []
                continue
            skip_deeper_than = None
        if stripped.startswith("#"):
            comments.append(stripped)
            continue
        if stripped.startswith("-"):
            while stack and stack[-1][0] > indent:
                stack.pop()
            skip_deeper_than = stack[-1][0] if stack else -1
            comments = []
            continue
        match = _KEY.match(stripped)
        if match is None:
            comments = []
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        key = match.group("key")
        if key[:1] in "\"'":
            key = key[1:-1]
        stack.append((indent, key))
        description, default_text = _parse_doc(comments)
        keys.append(KeyLine(tuple(k for _, k in stack), number, description, default_text))
        comments = []
        value = (match.group("value") or "").strip()
        if _BLOCK_SCALAR.match(value):
            skip_deeper_than = indent
    return keys


def _lookup(node: Any, path: Path_) -> Any:
    for part in path:
        node = node[part]
    return node


def _schema_node(schema: dict[str, Any], path: Path_) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in path:
        if node is None:
            return None
        node = node.get("properties", {}).get(part)
    return node


_JSON_TYPES = {
    "string": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
    "object": "object",
    "null": "null",
}


def _type_name(value: Any, schema_node: dict[str, Any] | None) -> str:
    declared = (schema_node or {}).get("type")
    if declared is not None:
        names = declared if isinstance(declared, list) else [declared]
        return " or ".join(_JSON_TYPES.get(str(n), str(n)) for n in names)
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def rows(chart: Path) -> list[Row]:
    """One table row per documented key, in file order."""
    text = (chart / VALUES).read_text(encoding="utf-8")
    values = read_yaml_file(chart / VALUES)
    schema = _read_schema(chart)
    table = []
    for key in scan_keys(text):
        if key.description is None:
            continue
        value = _lookup(values, key.path)
        shown = key.default_text or json.dumps(value, separators=(",", ":"))
        table.append(
            Row(
                key=dotted(key.path),
                type=_type_name(value, _schema_node(schema, key.path)),
                default=shown,
                description=key.description,
            )
        )
    return table


def render_table(table: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    lines += [
        f"| `{cell(r.key)}` | {cell(r.type)} | `{cell(r.default)}` | {cell(r.description)} |"
        for r in table
    ]
    return "\n".join(lines) + "\n"


def replace_table(readme_text: str, table: str, source: str) -> str:
    start = readme_text.find(TABLE_START)
    end = readme_text.find(TABLE_END)
    if start < 0 or end < start:
        raise UsageError(
            f"no values table markers ({TABLE_START} ... {TABLE_END})",
            source=source,
            fix="put both marker lines where the table belongs",
        )
    head = readme_text[: start + len(TABLE_START)]
    return f"{head}\n{table}{readme_text[end:]}"


def undocumented(chart: Path) -> list[Problem]:
    """Keys with a value but no `# --` comment on themselves or an enclosing map."""
    text = (chart / VALUES).read_text(encoding="utf-8")
    values = read_yaml_file(chart / VALUES)
    keys = scan_keys(text)
    documented = {k.path for k in keys if k.description is not None}
    problems = []
    for key in keys:
        value = _lookup(values, key.path)
        if isinstance(value, dict) and value:
            continue  # a section: its leaves carry the documentation
        covered = any(key.path[:n] in documented for n in range(1, len(key.path) + 1))
        if not covered:
            problems.append(
                Problem(
                    key=dotted(key.path),
                    message=f"line {key.line} has no `# --` comment",
                    fix="add a `# -- what it does` line above it, then " + WRITE_FIX,
                    source=str(chart / VALUES),
                )
            )
    return problems


def _read_schema(chart: Path) -> dict[str, Any]:
    file = chart / SCHEMA
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError("file not found", source=str(file), fix="restore it") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"invalid JSON at line {exc.lineno}: {exc.msg}", source=str(file), fix="correct it"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError("not a JSON object", source=str(file), fix="write a JSON Schema object")
    return data


def schema_problems(chart: Path) -> list[Problem]:
    """values.yaml and values.schema.json must describe the same keys; defaults must validate."""
    values = read_yaml_file(chart / VALUES)
    schema = _read_schema(chart)
    source = str(chart / SCHEMA)
    problems: list[Problem] = []

    def walk_values(node: dict[str, Any], schema_node: dict[str, Any], path: Path_) -> None:
        properties = schema_node.get("properties")
        if properties is None:
            return  # a free-form map: its keys are data
        for key, value in node.items():
            sub = properties.get(key)
            if sub is None:
                problems.append(
                    Problem(
                        key=dotted((*path, key)),
                        message="in values.yaml but not in values.schema.json",
                        fix="add it under `properties` with its type and constraints",
                        source=source,
                    )
                )
            elif isinstance(value, dict):
                walk_values(value, sub, (*path, key))

    def walk_schema(schema_node: dict[str, Any], node: Any, path: Path_, *, paired: bool) -> None:
        # paired: this schema node stands for a key of values.yaml, so its properties must be
        # there too; list items and absent optional sections only need to be closed.
        if schema_node.get("type") == "object" or "properties" in schema_node:
            closed = schema_node.get("additionalProperties") is False
            if "properties" in schema_node and not closed:
                problems.append(
                    Problem(
                        key=dotted(path),
                        message="object schema without `additionalProperties: false`",
                        fix="close it so a misspelt key is an error, not ignored",
                        source=source,
                    )
                )
        for key, sub in schema_node.get("properties", {}).items():
            present = isinstance(node, dict) and key in node
            if paired and not present and not sub.get(OPTIONAL_MARK):
                problems.append(
                    Problem(
                        key=dotted((*path, key)),
                        message="in values.schema.json but not in values.yaml",
                        fix="add it to values.yaml with a `# --` comment, or remove it from "
                        f'the schema (or mark it `"{OPTIONAL_MARK}": true`)',
                        source=source,
                    )
                )
            child = node.get(key) if present else None
            walk_schema(sub, child, (*path, key), paired=paired and present)
        items = schema_node.get("items")
        if isinstance(items, dict):
            walk_schema(items, None, (*path, "[]"), paired=False)

    walk_values(values, schema, ())
    walk_schema(schema, values, (), paired=True)
    validator = jsonschema.Draft7Validator(schema)
    for error in sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path)):
        problems.append(
            Problem(
                key=".".join(str(p) for p in error.absolute_path),
                message=f"default does not validate: {error.message}",
                fix="correct the default in values.yaml or the constraint in the schema",
                value=error.instance,
                source=str(chart / VALUES),
            )
        )
    return problems


def readme_current(chart: Path) -> tuple[str, str]:
    """(README as it is, README as it should be)."""
    readme = chart / README
    if not readme.is_file():
        raise UsageError("file not found", source=str(readme), fix="create it with table markers")
    text = readme.read_text(encoding="utf-8")
    return text, replace_table(text, render_table(rows(chart)), str(readme))


def check(chart: Path) -> list[Problem]:
    """Everything stale or missing, one Problem each; empty when the docs are current."""
    problems = undocumented(chart) + schema_problems(chart)
    text, wanted = readme_current(chart)
    if text != wanted:
        problems.append(
            Problem(
                key="values table",
                message="stale: values.yaml changed since the table was generated",
                fix=WRITE_FIX,
                source=str(chart / README),
            )
        )
    return problems


def write(chart: Path) -> tuple[bool, list[Problem]]:
    """Regenerate the README table; returns (changed, problems a human must fix)."""
    text, wanted = readme_current(chart)
    changed = text != wanted
    if changed:
        (chart / README).write_text(wanted, encoding="utf-8")
    return changed, undocumented(chart) + schema_problems(chart)
