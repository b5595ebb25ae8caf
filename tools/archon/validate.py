"""kubeconform -strict on rendered manifests, against offline schemas of the pinned Kubernetes."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

from archon.errors import CommandFailed
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
    try:
        proc = subprocess.run(
            [*kubeconform_args(), "-verbose", "-"],
            input=manifest,
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
    return [
        ResourceResult(
            kind=r.get("kind", ""),
            name=r.get("name", ""),
            status=r.get("status", ""),
            message=r.get("msg", ""),
        )
        for r in report.get("resources", [])
    ]
