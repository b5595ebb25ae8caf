"""Render the chart with the user's values through the real helm."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archon.helm import run_helm, template_args, values_stdin
from archon.paths import chart_dir
from archon.values import Values, read_yaml_file

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
    args = template_args(
        str(chart or chart_dir()), release=release, namespace=namespace, extra=extra_args
    )
    manifest = run_helm(args, stdin=values_stdin(values))
    objects = [doc for doc in yaml.safe_load_all(manifest) if isinstance(doc, dict)]
    return Rendered(manifest=manifest, objects=objects)
