"""kube-score and checkov on every scenario and profile: nothing left after the chart's own,
reasoned annotations (the scanners run with their default checks and no command-line skips)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import PROFILES, SCENARIOS, Obj

pytestmark = pytest.mark.slow


def _manifest(render_text: Callable[..., str], values: Obj | Path | None, tmp: Path) -> Path:
    manifest = tmp / "manifest.yaml"
    manifest.write_text(render_text(values), encoding="utf-8")
    return manifest


@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_kube_score_and_checkov_find_nothing(
    values_file: Path, render_text: Callable[..., str], tmp_path: Path
) -> None:
    from archon.security.scanners import checkov, kube_score

    manifest = _manifest(render_text, values_file, tmp_path)
    assert [f.line() for f in kube_score(manifest)] == []
    assert [f.line() for f in checkov(manifest)] == []


def test_the_scanners_do_find_what_the_chart_leaves_open(
    render_text: Callable[..., str], tmp_path: Path
) -> None:
    from archon.security.scanners import checkov, kube_score

    # no NetworkPolicy and a pod without a CPU limit: both scanners must say so
    values: Obj = {
        "networkPolicy": {"enabled": False},
        "resources": {"limits": {"cpu": None}},
    }
    manifest = _manifest(render_text, values, tmp_path)
    score = {(f.check, f.resource) for f in kube_score(manifest)}
    assert ("pod-networkpolicy", "Deployment/archon-server") in score
    assert ("container-resources", "Deployment/archon-server") in score
    assert "CKV_K8S_11" in {f.check for f in checkov(manifest)}


def test_a_digest_lifts_the_digest_suppression(
    render_text: Callable[..., str], tmp_path: Path
) -> None:
    from archon.security.scanners import checkov

    digest = "sha256:" + "a" * 64
    values: Obj = {
        "image": {"digest": digest},
        "test": {"enabled": False},
        "apiKey": {"enabled": False},
    }
    text = render_text(values)
    assert f"vllm/vllm-openai:v0.19.1@{digest}" in text
    assert "CKV_K8S_43" not in text, "no suppression where the image is pinned by digest"
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(text, encoding="utf-8")
    assert [f.line() for f in checkov(manifest)] == []
