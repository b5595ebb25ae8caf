"""Offline Kubernetes JSON schemas for kubeconform, from the kubernetes-validate package.

kubernetes-validate ships one folder per Kubernetes minor (`v1.35.0-local-strict/`) whose files
point into a shared `_definitions.json` with absolute refs (`/api/_definitions.json#/...`).
kubeconform reads `<dir>/v1.35.0-standalone-strict/<kind>-<group>-<version>.json` and does not
resolve a bare relative ref from a local file, so the refs are rewritten once, into the cache, to
absolute `file://` URLs of the copied `_definitions.json`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from archon.errors import ToolchainError
from archon.paths import cache_dir
from archon.toolchain.registry import kubernetes_version

STAMP = ".archon-ok"
_ABSOLUTE_REF = '"/api/_definitions.json#'


def _package_schema_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise ToolchainError(
            "the kubernetes-validate package is not installed",
            fix="run `make venv` (pip install -e '.[dev]')",
        )
    return Path(spec.origin).parent / "kubernetes-json-schema"


def schemas_root(version: str | None = None) -> Path:
    return cache_dir() / "schemas" / f"kubernetes-v{version or kubernetes_version()}"


def schema_location(version: str | None = None) -> str:
    """The -schema-location template for kubeconform (offline, no network ever)."""
    root = schemas_root(version)
    return (
        str(root) + "/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
        "/{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )


def ensure_schemas(version: str | None = None) -> Path:
    version = version or kubernetes_version()
    root = schemas_root(version)
    if (root / STAMP).is_file():
        return root
    source_root = _package_schema_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="archon-schemas-", dir=root.parent) as tmp:
        staged = Path(tmp) / "staged"
        for strict_suffix in ("", "-strict"):
            source = source_root / f"v{version}-local{strict_suffix}"
            if not source.is_dir():
                raise ToolchainError(
                    f"kubernetes-validate has no schemas for Kubernetes v{version}",
                    fix="pin kubernetes_schemas.kubernetes_version in data/toolchain.json "
                    "to a version the installed kubernetes-validate ships",
                )
            folder = f"v{version}-standalone{strict_suffix}"
            target = staged / folder
            target.mkdir(parents=True)
            # refs must name where the files will live after the rename below
            final_ref = '"' + (root / folder / "_definitions.json").as_uri() + "#"
            for item in source.iterdir():
                if item.suffix != ".json":
                    continue
                text = item.read_text(encoding="utf-8")
                (target / item.name).write_text(
                    text.replace(_ABSOLUTE_REF, final_ref), encoding="utf-8"
                )
        (staged / STAMP).write_text(f"kubernetes v{version}\n", encoding="utf-8")
        if root.exists():
            shutil.rmtree(root)
        os.replace(staged, root)
    return root
