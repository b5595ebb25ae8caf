"""The chart rendered by the real, pinned helm, with the values on stdin as an argument list."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import CHART, HELM_TIMEOUT_S, Obj, values_text


@pytest.fixture(scope="session")
def helm() -> Path:
    from archon.toolchain import ensure

    return ensure("helm")


@pytest.fixture(scope="session")
def run_helm(helm: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def _run(
        args: list[str], values: Obj | str | Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helm), *args, "-f", "-"],
            input=values_text(values),
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            check=False,
        )

    return _run


@pytest.fixture(scope="session")
def render_text(run_helm: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., str]:
    """`helm template` of the chart: the manifest as text."""

    def _render(values: Obj | str | Path | None = None, release: str = "archon") -> str:
        done = run_helm(["template", release, str(CHART), "--namespace", "ai"], values)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return _render


@pytest.fixture(scope="session")
def render(render_text: Callable[..., str]) -> Callable[..., list[Obj]]:
    """`helm template` of the chart: the objects."""

    def _render(values: Obj | str | Path | None = None, release: str = "archon") -> list[Obj]:
        docs = yaml.safe_load_all(render_text(values, release))
        return [d for d in docs if isinstance(d, dict)]

    return _render


@pytest.fixture(scope="session")
def render_error(run_helm: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., str]:
    """helm's stderr for values the chart must refuse."""

    def _render(values: Obj | str) -> str:
        done = run_helm(["template", "archon", str(CHART)], values)
        assert done.returncode != 0, "helm rendered values that must be refused"
        return done.stderr

    return _render
