"""The pinned toolchain: real binaries report their pinned versions; the cache is reused."""

import json
import subprocess
import time
from pathlib import Path

import pytest

from archon.errors import ToolchainError
from archon.toolchain import load_specs, schema_location, tool_path
from archon.toolchain.install import STAMP, ensure, is_installed, tool_dir


def test_every_tool_is_pinned_to_an_exact_version() -> None:
    specs = load_specs()
    assert {"helm", "kubeconform"} <= set(specs)
    for spec in specs.values():
        assert spec.version.startswith("v") and spec.version.count(".") == 2, spec
        assert "latest" not in spec.version
    assert specs["helm"].package.startswith("helm.sh/helm/v4/")


def test_wrapper_modules_ship_as_package_data() -> None:
    from archon.paths import data_dir

    wrapped = {name: spec for name, spec in load_specs().items() if spec.wrapper}
    assert {"kube-apiserver", "etcd"} <= set(wrapped)
    for name, spec in wrapped.items():
        folder = spec.wrapper_dir()
        assert folder is not None and not Path(spec.wrapper).is_absolute(), name
        assert folder.is_relative_to(data_dir()), f"{name}: {folder} is outside archon/data"
        assert (folder / "go.mod").is_file() and (folder / "go.sum").is_file(), name
        module = (folder / "go.mod").read_text(encoding="utf-8")
        # The package a wrapper builds is its own module or one it requires.
        assert spec.package.split("/cmd/")[0] in module or spec.package in module, name


def test_cache_lives_outside_the_clone(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path / "c"))
    spec = load_specs()["helm"]
    assert tool_dir(spec) == tmp_path / "c" / "bin" / f"helm-{spec.version}"


def test_missing_tool_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path))
    with pytest.raises(ToolchainError) as info:
        tool_path("helm")
    assert "archon toolchain install" in info.value.line()


def test_unknown_tool_is_a_one_line_error() -> None:
    with pytest.raises(ToolchainError, match="unknown tool 'kubectl2'"):
        ensure("kubectl2")


def test_binary_without_stamp_is_not_trusted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A build interrupted after the copy but before the version check leaves no stamp.
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path))
    spec = load_specs()["kubeconform"]
    tool_dir(spec).mkdir(parents=True)
    (tool_dir(spec) / "kubeconform").write_text("#!/bin/sh\n")
    assert not is_installed(spec)
    (tool_dir(spec) / STAMP).write_text("ok")
    assert is_installed(spec)


@pytest.mark.slow
def test_real_tools_report_pinned_versions(toolchain: dict[str, Path]) -> None:
    specs = load_specs()
    helm = subprocess.run(
        [str(toolchain["helm"]), "version", "--template", "{{.Version}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert helm.stdout.strip() == specs["helm"].version
    kubeconform = subprocess.run(
        [str(toolchain["kubeconform"]), "-v"], capture_output=True, text=True, check=True
    )
    assert kubeconform.stdout.strip() == specs["kubeconform"].version


@pytest.mark.slow
def test_warm_install_only_checks_the_cache(toolchain: dict[str, Path], run_cli) -> None:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = run_cli("toolchain", "install")
    elapsed = time.perf_counter() - start
    assert result.code == 0
    assert "building" not in result.out  # nothing rebuilt
    assert elapsed < 5  # generous bound: a rebuild takes minutes
    check = run_cli("toolchain", "check", "--output", "json")
    assert check.code == 0
    assert json.loads(check.out)["ok"] is True


@pytest.mark.slow
def test_offline_schemas_have_rewritten_refs(toolchain: dict[str, Path]) -> None:
    strict = Path(schema_location().split("{{")[0]).parent / f"{toolchain['schemas'].name}"
    folder = next(p for p in toolchain["schemas"].iterdir() if p.name.endswith("-strict"))
    text = (folder / "deployment-apps-v1.json").read_text()
    assert '"/api/_definitions.json#' not in text
    assert (folder / "_definitions.json").as_uri() + "#" in text
    assert strict.exists()
