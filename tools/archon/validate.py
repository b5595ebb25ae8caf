"""kubeconform -strict on rendered manifests, against offline schemas of the pinned Kubernetes."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from archon.errors import EXIT_PROBLEMS, ArchonError, CommandFailed
from archon.render import DEFAULT_NAMESPACE, DEFAULT_RELEASE
from archon.toolchain import ensure, ensure_schemas, schema_location
from archon.toolchain.registry import kubernetes_version

KUBECONFORM_TIMEOUT_S = 60


@dataclass(frozen=True)
class ResourceResult:
    kind: str
    name: str
    status: str  # statusValid, statusInvalid, statusError, statusSkipped
    message: str

    @property
    def ok(self) -> bool:
        return self.status in ("statusValid", "statusEmpty")


def kubeconform_args() -> list[str]:
    ensure_schemas()
    return [
        str(ensure("kubeconform")),
        "-strict",
        "-summary",
        "-output",
        "json",
        "-kubernetes-version",
        kubernetes_version(),
        "-schema-location",
        schema_location(),
    ]


def validate_manifest(manifest: str) -> list[ResourceResult]:
    return validate_manifests({"manifest": manifest})["manifest"]


def validate_manifests(manifests: dict[str, str]) -> dict[str, list[ResourceResult]]:
    """Validate several rendered manifests in ONE kubeconform run.

    Loading and compiling the schemas (a 1.5 MB definitions file) is most of kubeconform's time,
    so one run over N files costs little more than a run over one.
    """
    results: dict[str, list[ResourceResult]] = {name: [] for name in manifests}
    with tempfile.TemporaryDirectory(prefix="archon-validate-") as tmp:
        by_path: dict[str, str] = {}
        for index, (name, manifest) in enumerate(manifests.items()):
            path = Path(tmp) / f"{index:04d}.yaml"
            path.write_text(manifest, encoding="utf-8")
            by_path[str(path)] = name
        try:
            proc = subprocess.run(
                [*kubeconform_args(), "-verbose", *by_path],
                capture_output=True,
                text=True,
                timeout=KUBECONFORM_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CommandFailed(f"kubeconform took longer than {KUBECONFORM_TIMEOUT_S} s") from exc
    # exit 1 means invalid resources (reported in the JSON); anything else is a tool failure
    if proc.returncode not in (0, 1):
        raise CommandFailed(
            f"kubeconform failed: {proc.stderr.strip()[:200]}",
            fix="run `archon toolchain check`",
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CommandFailed(f"kubeconform printed no JSON: {proc.stdout[:200]!r}") from exc
    for r in report.get("resources", []):
        name = by_path.get(r.get("filename", ""), "")
        results.setdefault(name, []).append(
            ResourceResult(
                kind=r.get("kind", ""),
                name=r.get("name", ""),
                status=r.get("status", ""),
                message=r.get("msg", ""),
            )
        )
    return results


@dataclass
class ScenarioResult:
    """One values file (or the chart defaults), rendered and validated."""

    file: str
    resources: list[ResourceResult]
    error: str = ""  # a render failure (a `fail` in the chart, a helm error)

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.resources) and all(r.ok for r in self.resources)


def validate_scenarios(
    files: Sequence[str | Path | None],
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[ScenarioResult]:
    """Render every scenario (None = chart defaults) and validate them all in one kubeconform run.

    helm runs in a small thread pool: each render is a separate process, so two cores render
    two scenarios at once.
    """
    from archon.render import render_chart

    def render(file: str | Path | None) -> tuple[str, str]:
        rendered = render_chart([file] if file else [], release=release, namespace=namespace)
        return str(file) if file else "(chart defaults)", rendered.manifest

    results: list[ScenarioResult] = []
    manifests: dict[str, str] = {}
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(render, file) for file in files]
        for file, future in zip(files, futures, strict=True):
            name = str(file) if file else "(chart defaults)"
            try:
                _, manifest = future.result()
            except ArchonError as exc:
                if exc.exit_code != EXIT_PROBLEMS:
                    raise
                results.append(ScenarioResult(name, [], error=exc.line()))
                continue
            manifests[name] = manifest
            results.append(ScenarioResult(name, []))
    validated = validate_manifests(manifests) if manifests else {}
    for result in results:
        if not result.error:
            result.resources = validated.get(result.file, [])
            if not result.resources:
                result.error = "no resources rendered"
    return results
