"""`archon lint`: every values file checked on its own over the chart defaults, against the
schema (archon.schema), the archetype rules (archon.gateway) and the preflight's FAILs."""

from __future__ import annotations

import re
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
    values: ValuesSet, *, preflight: bool = True, gpu: str | None = None, chart: bool = True
) -> list[Problem]:
    """Every problem of every file of `values`, each file checked alone: the schema, the
    archetype rules, what the chart's templates refuse (`chart`, through the pinned helm) and
    the preflight's FAILs."""
    problems: list[Problem] = []
    for one in values.each():
        source = one.source
        _, found = values_problems(one.merged, source=source, chart=one.chart)
        if not found and chart:
            from archon.render import chart_problems  # helm: loaded only when it is run

            # The chart's own refusals, by the chart itself: lint, render and deploy agree.
            found = chart_problems(one)
        problems.extend(found)
        if preflight and not found:
            problems.extend(preflight_problems(one.merged, source=source, gpu=gpu))
    return problems


def values_problems(
    values: Values, *, source: str = "", chart: Path | None = None
) -> tuple[str, list[Problem]]:
    """What the chart refuses that the values alone show, without helm: the schema, then the
    archetype rules (they assume the shapes the schema guarantees). Lint, the preflight and
    deploy all ask here. Returns the check that refused ("schema" or "archetypes") and its
    problems; ("", []) when both pass."""
    found = schema_problems(values, source=source, chart=chart)
    if found:
        return "schema", found
    found = archetype_problems(values, source)
    return ("archetypes", found) if found else ("", [])


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


def lint_warnings(values: ValuesSet) -> list[Problem]:
    """Supply-chain warnings of every file: printed as WARN lines, never a reason to exit 1."""
    # Only over files the schema accepts: the checks read the shapes it guarantees.
    return [
        w
        for one in values.each()
        if not schema_problems(one.merged, chart=one.chart)
        for w in supply_chain_warnings(one.merged, one.source)
    ]


def supply_chain_warnings(values: Values, source: str = "") -> list[Problem]:
    """What makes the served weights or the code vLLM runs drift or come from anywhere: a model
    revision that is a branch or tag, Hub adapters fetched at their head, and trust-remote-code
    (code from the model repository, run in the server)."""
    found: list[Problem] = []
    model = values.get("model") or {}
    revision = str(model.get("revision") or "")
    if "revision" in model and not _COMMIT.fullmatch(revision):
        found.append(
            Problem(
                "model.revision",
                f"{revision or '(empty)'} is a branch or tag: the weights can change under the "
                "same values on the next download",
                f"pin the commit SHA of {model.get('name', 'the model')} (40 hex characters)",
                value=revision,
                source=source,
            )
        )
    for archetype in values.get("archetypes") or []:
        lora = archetype.get("lora") or {}
        source_repo = str(lora.get("source") or "")
        if archetype.get("enabled", True) and source_repo and not source_repo.startswith("/"):
            found.append(
                Problem(
                    f"archetypes[name={archetype.get('name')}].lora.source",
                    f"{source_repo} is downloaded at the repository's head, with no revision",
                    "download the adapter once at a fixed commit into the model cache and set "
                    "lora.source to its /models path",
                    value=source_repo,
                    source=source,
                )
            )
    extra_config = model.get("extraConfig") or {}
    extra_args = [str(a) for a in model.get("extraArgs") or []]
    if extra_config.get("trust-remote-code") or any(
        a == "--trust-remote-code" or a.startswith("--trust-remote-code=") for a in extra_args
    ):
        key = "model.extraConfig" if extra_config.get("trust-remote-code") else "model.extraArgs"
        found.append(
            Problem(
                key,
                "trust-remote-code runs Python code from the model repository inside the server",
                "serve a model vLLM supports natively, or pin model.revision to a commit you "
                "have reviewed",
                value="trust-remote-code",
                source=source,
            )
        )
    return found


_COMMIT = re.compile(r"[0-9a-f]{40}")
