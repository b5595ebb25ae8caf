"""kube-score and checkov on a rendered manifest: their findings, after the chart's annotations.

Findings that do not fit a GPU server are suppressed in the chart, by annotations that say why
(`kube-score/ignore`, `checkov.io/skipN`); nothing is suppressed on a command line here, so what
these functions return is what is left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from archon.errors import ToolchainError
from archon.paths import cache_dir, data_file
from archon.toolchain import ensure

SCAN_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 900


@dataclass(frozen=True)
class Finding:
    tool: str
    check: str
    resource: str
    message: str

    def line(self) -> str:
        return f"{self.tool}: {self.resource}: {self.check}: {self.message}"


@cache
def _python_tool(name: str) -> tuple[str, str]:
    with data_file("toolchain.json").open(encoding="utf-8") as fh:
        raw: dict[str, Any] = json.load(fh)["python_tools"][name]
    return str(raw["package"]), str(raw["version"])


def checkov_path() -> Path:
    package, version = _python_tool("checkov")
    return cache_dir() / "venvs" / f"{package}-{version}" / "bin" / "checkov"


def ensure_checkov() -> Path:
    """checkov in a venv of its own (its pins conflict with the project's), installed once."""
    binary = checkov_path()
    if binary.is_file():
        return binary
    package, version = _python_tool("checkov")
    root = binary.parent.parent
    print(f"installing {package} {version} into {root} (first run only)", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(root)
    try:
        done = subprocess.run(
            [str(root / "bin" / "pip"), "install", "--quiet", f"{package}=={version}"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(
            f"pip install {package}=={version} took over {INSTALL_TIMEOUT_S} s",
            fix="check the network to PyPI and retry",
        ) from exc
    if done.returncode != 0 or not binary.is_file():
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise ToolchainError(
            f"pip install {package}=={version} failed: {tail}",
            fix="check the network to PyPI and the pin in data/toolchain.json (python_tools)",
        )
    return binary


def _run(cmd: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=SCAN_TIMEOUT_S, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(
            f"{Path(cmd[0]).name} took over {SCAN_TIMEOUT_S} s", fix="retry on an idle machine"
        ) from exc


def kube_score(manifest: Path) -> list[Finding]:
    """kube-score's CRITICAL and WARNING results (default checks)."""
    done = _run([str(ensure("kube-score")), "score", "--output-format", "json", str(manifest)])
    try:
        report: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise ToolchainError(
            f"kube-score printed no JSON: {done.stderr.strip()[:200]}",
            fix="run `archon toolchain install kube-score` again",
        ) from exc
    found: list[Finding] = []
    for obj in report:
        meta = obj.get("object_meta") or {}
        kind = (obj.get("type_meta") or {}).get("kind", "?")
        resource = f"{kind}/{meta.get('name', '?')}"
        for check in obj.get("checks") or []:
            # grades: 1 critical, 5 warning, 7 almost ok, 10 ok; a check the chart's annotation
            # ignores is reported as skipped
            if check.get("skipped") or int(check.get("grade", 10)) >= 10:
                continue
            comments = check.get("comments") or [{}]
            message = "; ".join(str(c.get("summary", "")) for c in comments).strip("; ")
            found.append(Finding("kube-score", check["check"]["id"], resource, message))
    return found


def checkov(manifest: Path) -> list[Finding]:
    """checkov's failed Kubernetes checks, offline (no guideline download)."""
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    cmd = [str(ensure_checkov()), "--framework", "kubernetes", "--output", "json", "--quiet"]
    done = _run([*cmd, "--skip-download", "--file", str(manifest)], env=env)
    text = done.stdout.strip()
    if not text:
        return []
    try:
        raw: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolchainError(
            f"checkov printed no JSON: {done.stderr.strip()[-200:]}",
            fix="delete the checkov venv in the archon cache and retry",
        ) from exc
    reports = raw if isinstance(raw, list) else [raw]
    found: list[Finding] = []
    for report in reports:
        for check in (report.get("results") or {}).get("failed_checks") or []:
            resource = str(check.get("resource", "?"))
            found.append(Finding("checkov", check["check_id"], resource, check["check_name"]))
    return found
