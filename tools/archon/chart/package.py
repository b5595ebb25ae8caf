"""The chart as a versioned archive for a chart repository or an OCI registry.

`helm lint --strict` first (warnings fail too), then `helm package`; both with the pinned helm,
so what is published is what `archon render` and `archon validate` checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from archon.errors import CommandFailed, Problem, ProblemsFound, UsageError
from archon.helm import Helm

# helm lint prints one finding a line as `[LEVEL] path: message`; --strict fails on these two.
FAILING_LEVELS = ("[ERROR]", "[WARNING]")


@dataclass(frozen=True)
class Packaged:
    chart: Path
    name: str
    version: str
    path: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "chart": str(self.chart),
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
        }


def chart_metadata(chart: Path) -> tuple[str, str]:
    """(name, version) from Chart.yaml: what helm names the archive after."""
    file = chart / "Chart.yaml"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UsageError(
            f"{chart} holds no Chart.yaml", key="--chart", fix="point --chart at a chart folder"
        ) from exc
    except yaml.YAMLError as exc:
        raise UsageError(
            f"Chart.yaml is not valid YAML: {exc}", source=str(file), fix="correct the YAML"
        ) from exc
    if not isinstance(data, dict) or not data.get("name") or not data.get("version"):
        raise UsageError(
            "Chart.yaml needs `name` and `version`", source=str(file), fix="add both keys"
        )
    return str(data["name"]), str(data["version"])


def lint_strict(chart: Path, helm: Helm) -> None:
    """helm lint --strict; each finding it prints becomes a problem line."""
    proc = helm.lint(chart, strict=True)
    if proc.returncode == 0:
        return
    problems = []
    for raw in proc.stdout.splitlines():
        line = raw.strip()
        level = next((lv for lv in FAILING_LEVELS if line.startswith(lv)), None)
        if level is None:
            continue
        where, _, message = line.removeprefix(level).strip().partition(": ")
        problems.append(
            Problem(key=where, message=message or where, fix="fix the chart", source=str(chart))
        )
    if not problems:
        problems.append(
            Problem(
                key="",
                message=(proc.stderr.strip().splitlines() or ["helm lint failed"])[-1],
                fix="run `helm lint --strict` on the chart for details",
                source=str(chart),
            )
        )
    raise ProblemsFound(problems, summary=f"helm lint --strict: {len(problems)} finding(s)")


def package(chart: Path, destination: Path) -> Packaged:
    """Lint strictly, then write <name>-<version>.tgz into `destination`."""
    name, version = chart_metadata(chart)
    helm = Helm()
    lint_strict(chart, helm)
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create {destination}: {exc.strerror}",
            key="--destination",
            fix="name a writable folder",
        ) from exc
    helm.package(chart, destination)
    path = destination / f"{name}-{version}.tgz"
    if not path.is_file():
        raise CommandFailed(
            f"helm package reported success but {path} is missing",
            fix="check that the destination is writable",
        )
    return Packaged(chart=chart, name=name, version=version, path=path.resolve())
