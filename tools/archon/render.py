"""Render the chart with the user's values through the real helm."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archon.errors import Problem, ProblemsFound
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE, Helm, RenderFailed
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
    source = values.source or "values"
    problems = schema_problems(values.merged, source=source, chart=values.chart)
    if problems:
        raise ProblemsFound(problems)
    try:
        manifest = Helm().template(
            values.chart, values.overrides, release=release, namespace=namespace, extra=extra_args
        )
    except RenderFailed as exc:
        refusal = chart_refusal(exc, source)
        if refusal is None:
            raise
        raise ProblemsFound([refusal]) from exc
    objects = [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]
    return Rendered(manifest=manifest, objects=objects)


# A chart refusal (templates/_validate.tpl) reads "values: KEY=VALUE why; fix: how" or
# "values: KEY is ...; fix: how"; the key is what a user writes in YAML.
_REFUSAL = re.compile(
    r"^(?:values: )?(?P<key>[A-Za-z][A-Za-z0-9_.\[\]/-]*?)(?P<sep>=| |: )(?P<rest>.*)$"
)


def chart_refusal(exc: RenderFailed, source: str) -> Problem | None:
    """A template `fail` of the chart as one Problem of `source`; None for any other failure."""
    if "execution error at" not in exc.stderr:
        return None
    body, _, fix = exc.message.partition("; fix: ")
    match = _REFUSAL.match(body)
    if match is None:
        return Problem("", body, fix or exc.fix, source=source)
    rest = match["rest"].lstrip(": ") if match["sep"] != "=" else match["rest"]
    return Problem(match["key"].rstrip("."), rest, fix or exc.fix, source=source)


def chart_problems(values: ValuesSet) -> list[Problem]:
    """What the chart itself refuses for `values` (helm template, nothing else checked)."""
    try:
        Helm().template(
            values.chart,
            values.overrides,
            release=DEFAULT_RELEASE,
            namespace=DEFAULT_NAMESPACE,
        )
    except RenderFailed as exc:
        refusal = chart_refusal(exc, values.source or "values")
        if refusal is None:
            raise
        return [refusal]
    return []


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
