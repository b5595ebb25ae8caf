"""Render the chart with the user's values through the real helm."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archon.errors import ProblemsFound
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE, Helm
from archon.schema import schema_problems
from archon.values import Values, ValuesSet


@dataclass
class Rendered:
    manifest: str
    objects: list[dict[str, Any]] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o.get("kind") == kind]


def render_values(
    values: ValuesSet,
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    extra_args: Sequence[str] = (),
) -> Rendered:
    """helm template of `values.chart` with `values.overrides` on stdin.

    Helm checks values.schema.json too, but reports JSON pointers and schema jargon; checking
    first gives the same one-line problems as `archon lint` (key path, value, fix).
    """
    problems = schema_problems(values.merged, source=values.source or "values", chart=values.chart)
    if problems:
        raise ProblemsFound(problems)
    manifest = Helm().template(
        values.chart, values.overrides, release=release, namespace=namespace, extra=extra_args
    )
    objects = [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]
    return Rendered(manifest=manifest, objects=objects)


def render_chart(
    files: Sequence[str | Path] = (),
    *,
    overrides: Values | None = None,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart: str | Path | None = None,
    extra_args: Sequence[str] = (),
) -> Rendered:
    """Render with values files layered like repeated `helm -f`, then `overrides`."""
    values = ValuesSet.read(files, chart=chart, overrides=overrides)
    return render_values(values, release=release, namespace=namespace, extra_args=extra_args)
