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

from archon.errors import CommandFailed, ProblemsFound, UsageError
from archon.gitops.crds import crd_schema_location, ensure_crd_schemas
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE, HelmError
from archon.render import render_values
from archon.toolchain import ensure, ensure_schemas, schema_location
from archon.toolchain.registry import kubernetes_version
from archon.values import ValuesSet

KUBECONFORM_TIMEOUT_S = 60


@dataclass(frozen=True)
class ResourceResult:
    kind: str
    name: str
    status: str  # statusValid, statusInvalid, statusError, statusSkipped
    message: str
    file: str = ""  # the manifest file, for validate_files

    @property
    def ok(self) -> bool:
        return self.status in ("statusValid", "statusEmpty")


def kubeconform_args() -> list[str]:
    """kubeconform -strict against the offline Kubernetes schemas and those of the pinned CRDs
    (the chart's ServiceMonitor and PrometheusRule, ArgoCD's and Tekton's kinds)."""
    ensure_schemas()
    ensure_crd_schemas()
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
        "-schema-location",
        crd_schema_location(),
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
        found = _run_kubeconform([*kubeconform_args(), "-verbose", *by_path])
    for result in found:
        results.setdefault(by_path.get(result.file, ""), []).append(result)
    return results


def _run_kubeconform(cmd: list[str]) -> list[ResourceResult]:
    """Run kubeconform with `-output json`; exit 1 means invalid resources, reported in the JSON,
    anything else is a failure of the tool itself."""
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=KUBECONFORM_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"kubeconform took longer than {KUBECONFORM_TIMEOUT_S} s") from exc
    if proc.returncode not in (0, 1):
        raise CommandFailed(
            f"kubeconform failed: {proc.stderr.strip()[:200]}",
            fix="run `archon toolchain check`",
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CommandFailed(f"kubeconform printed no JSON: {proc.stdout[:200]!r}") from exc
    return [
        ResourceResult(
            kind=r.get("kind", ""),
            name=r.get("name", ""),
            status=r.get("status", ""),
            message=r.get("msg", ""),
            file=r.get("filename", ""),
        )
        for r in report.get("resources", [])
    ]


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

    Every file is read before anything renders, so unusable input stops the run at once. helm
    runs in a small thread pool: each render is a separate process, so two cores render two
    scenarios at once.
    """
    every = ValuesSet.read([f for f in files if f])
    alone = iter(every.each())
    scenarios = [next(alone) if f else ValuesSet.of(every.chart, every.defaults, ()) for f in files]

    def render(values: ValuesSet) -> str:
        return render_values(values, release=release, namespace=namespace).manifest

    results: list[ScenarioResult] = []
    manifests: dict[str, str] = {}
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(render, values) for values in scenarios]
        for file, future in zip(files, futures, strict=True):
            name = str(file) if file else "(chart defaults)"
            try:
                manifest = future.result()
            except (ProblemsFound, HelmError) as exc:  # this scenario is wrong; the others stand
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


# Plain manifest files (the ArgoCD and Tekton manifests in argocd/ and ci/tekton/, or a user's
# own): Kubernetes kinds against the pinned Kubernetes schemas, ArgoCD and Tekton kinds against
# schemas made from the pinned upstream CRDs.

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# kustomize's own configuration is no Kubernetes resource: there is no schema to check it with
KUSTOMIZE_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "Kustomization"})


def manifest_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to validate: files as given, folders searched for YAML and JSON files."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and p.suffix in MANIFEST_SUFFIXES and p.name not in KUSTOMIZE_FILES
            )
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(
                "no such file or folder", source=str(raw), fix="pass manifest files or folders"
            )
    if not files:
        raise UsageError(
            "no manifest files (*.yaml, *.yml, *.json) found",
            source=", ".join(str(p) for p in paths),
            fix="pass the folders that hold the manifests",
        )
    return files


def validate_files(paths: Sequence[str | Path]) -> list[ResourceResult]:
    """kubeconform -strict on manifest files or folders, every resource in one run."""
    files = manifest_files(paths)
    cmd = [*kubeconform_args(), "-verbose"]
    results = _run_kubeconform([*cmd, *(str(f) for f in files)])
    # kubeconform's workers finish in any order; report in the order the files were given
    order = {str(f): index for index, f in enumerate(files)}
    return sorted(results, key=lambda r: order.get(r.file, len(order)))
