"""Render the chart with the user's values through the real helm."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archon.errors import ProblemsFound
from archon.helm import run_helm, template_args, values_stdin
from archon.paths import chart_dir
from archon.values import Values, merge, read_yaml_file

DEFAULT_RELEASE = "archon"
DEFAULT_NAMESPACE = "archon-system"


def merge_overrides(base: Values, override: Values) -> Values:
    """Combine user files the way repeated `-f` does, keeping nulls: helm applies a null
    against the chart defaults (it removes the default), so it must survive this step."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge_overrides(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def user_overrides(files: Sequence[str | Path]) -> Values:
    merged: Values = {}
    for file in files:
        merged = merge_overrides(merged, read_yaml_file(file))
    return merged


def _check_schema(values: Values, chart: Path, *, source: str) -> None:
    """Helm checks values.schema.json too, but reports JSON pointers and schema jargon; checking
    first gives the same one-line problems as `archon lint` (key path, value, fix)."""
    from archon.lint import schema_problems

    defaults = read_yaml_file(chart / "values.yaml")
    problems = schema_problems(merge(defaults, values), source=source, chart=chart)
    if problems:
        raise ProblemsFound(problems)


@dataclass
class Rendered:
    manifest: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]


def render_chart(
    files: Sequence[str | Path] = (),
    *,
    overrides: Values | None = None,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> Rendered:
    values = user_overrides(files)
    if overrides:
        values = merge_overrides(values, overrides)
    chart_path = Path(chart or chart_dir())
    _check_schema(values, chart_path, source=", ".join(str(f) for f in files) or "values")
    args = template_args(str(chart_path), release=release, namespace=namespace, extra=extra_args)
    manifest = run_helm(args, stdin=values_stdin(values))
    objects = [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]
    return Rendered(manifest=manifest, objects=objects)
