"""Every scenario in ci/ and every profile in values/: helm lint --strict, render, kubeconform
-strict, and what each profile promises."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import (
    CHART,
    HELM_TIMEOUT_S,
    PROFILES,
    REPO_ROOT,
    SCENARIOS,
    Obj,
    container,
    engine_config,
)

pytestmark = pytest.mark.slow


def test_the_promised_scenarios_and_profiles_exist() -> None:
    scenarios = {p.name for p in SCENARIOS}
    assert {
        "nvidia-values.yaml",
        "amd-values.yaml",
        "ingress-tls-values.yaml",
        "existing-claim-values.yaml",
        "api-key-values.yaml",
        "minimal-values.yaml",
        "archetypes-values.yaml",
        "argocd-values.yaml",
    } <= scenarios
    assert {"rtx5080.yaml", "rtx5070.yaml", "rx7900xtx.yaml", "rtx4090.yaml"} <= {
        p.name for p in PROFILES
    }


@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_values_file_lints_renders_and_validates(
    values_file: Path,
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
    render_text: Callable[..., str],
    tmp_path: Path,
) -> None:
    from archon.gitops.crds import crd_schema_location, ensure_crd_schemas
    from archon.toolchain import ensure, ensure_schemas, schema_location
    from archon.toolchain.registry import kubernetes_version

    lint = run_helm(["lint", "--strict", str(CHART)], values_file)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "[WARNING]" not in lint.stdout and "[ERROR]" not in lint.stdout

    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render_text(values_file), encoding="utf-8")
    ensure_schemas()
    ensure_crd_schemas()  # ServiceMonitor and PrometheusRule: the pinned prometheus-operator CRDs
    done = subprocess.run(
        [
            str(ensure("kubeconform")),
            "-strict",
            "-summary",
            "-schema-location",
            schema_location(),
            "-schema-location",
            crd_schema_location(),
            "-kubernetes-version",
            kubernetes_version(),
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Skipped: 0" in done.stdout and "Invalid: 0" in done.stdout


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_names_its_card_and_says_why(
    profile: Path, render: Callable[..., list[Obj]]
) -> None:
    text = profile.read_text(encoding="utf-8")
    assert text.startswith("#"), "a profile starts with a header comment naming the card"
    assert "GiB" in text and "KiB per token" in text, "the header explains the memory numbers"
    values = yaml.safe_load(text)
    assert values["gpu"]["profile"], "preflight needs gpu.profile"
    config = engine_config(render(profile))
    assert config["max-model-len"] == values["model"]["maxModelLen"]


def test_the_12gb_profile_does_not_serve_the_14b_model(render: Callable[..., list[Obj]]) -> None:
    objects = render(REPO_ROOT / "values" / "rtx5070.yaml")
    assert container(objects)["args"][0] == "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4"
