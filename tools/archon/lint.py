"""`archon lint`: every values file checked on its own over the chart defaults, against the
schema (archon.schema), the archetype rules (archon.gateway) and the preflight's FAILs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from archon.errors import Problem
from archon.gateway import archetype_problems
from archon.preflight import check_values
from archon.preflight.settings import read_settings
from archon.schema import schema_problems
from archon.values import Values, ValuesSet


def lint_values(
    values: ValuesSet, *, preflight: bool = True, gpu: str | None = None
) -> list[Problem]:
    """Every problem of every file of `values`, each file checked alone."""
    problems: list[Problem] = []
    for one in values.each():
        source = one.source
        found = schema_problems(one.merged, source=source, chart=one.chart)
        if not found:  # the cross-field checks assume the shapes the schema guarantees
            found = list(archetype_problems(one.merged, source))
        problems.extend(found)
        if preflight and not found:
            problems.extend(preflight_problems(one.merged, source=source, gpu=gpu))
    return problems


def lint_files(
    files: Sequence[str | Path], *, preflight: bool = True, gpu: str | None = None
) -> list[Problem]:
    """Every problem of every file; a file that cannot be read raises UsageError."""
    return lint_values(ValuesSet.read(files), preflight=preflight, gpu=gpu)


def preflight_problems(values: Values, *, source: str, gpu: str | None) -> list[Problem]:
    """Preflight FAILs count as lint problems; WARNs are printed by `archon preflight` only."""
    if not gpu and not (values.get("gpu") or {}).get("profile"):
        # No card to size against, but settings vLLM refuses on any card still count.
        return [replace(p, source=source) for p in read_settings(values).problems]
    report = check_values(values, gpu=gpu, source=source)
    if report.verdict != "FAIL":
        return []
    return [Problem(p.key, p.message, p.fix, value=p.value, source=source) for p in report.failures]
