"""How `archon deploy`, `status` and `uninstall` fail: helm's failures by type, Archon's own bugs
never disguised as a helm failure (no cluster needed: helm or the API are replaced where noted)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import archon.deploy.install
from archon.helm import Helm


def _bug(*args: object, **kwargs: object) -> None:
    raise TypeError("an Archon bug")


def test_a_bug_in_the_helm_thread_is_an_internal_error(
    dead_cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli
) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    monkeypatch.setattr(
        archon.deploy.install, "reach_api", lambda target, timeout_s: target.api_client()
    )
    monkeypatch.setattr(Helm, "pending", lambda self, release, namespace: None)
    monkeypatch.setattr(Helm, "upgrade_install", _bug)
    result = run_cli(
        "deploy", "-f", str(values), "--kubeconfig", str(dead_cluster), "--timeout", "5"
    )
    assert result.code == 70
    assert "internal error: TypeError: an Archon bug" in result.err
    assert "release" not in result.err.splitlines()[-1]  # not reported as a failed rollout


@pytest.mark.parametrize(("command", "verb"), [("status", "status"), ("uninstall", "uninstall")])
def test_a_bug_in_status_or_uninstall_is_an_internal_error(
    dead_cluster: Path, monkeypatch: pytest.MonkeyPatch, run_cli, command: str, verb: str
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(Helm, verb, _bug)
    monkeypatch.setattr(f"archon.deploy.{command}.reach_api", lambda target, timeout_s: None)
    result = run_cli(command, "--kubeconfig", str(dead_cluster))
    assert result.code == 70
    assert "internal error: TypeError: an Archon bug" in result.err


@pytest.mark.parametrize("command", ["status", "uninstall", "deploy"])
def test_an_unreachable_cluster_is_one_line_within_seconds(
    dead_cluster: Path, tmp_path: Path, run_cli, command: str
) -> None:  # type: ignore[no-untyped-def]
    # A closed port is final: no retry loop, exit 2, the server and the fix named.
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    extra = ["-f", str(values)] if command == "deploy" else []
    start = time.monotonic()
    result = run_cli(command, *extra, "--kubeconfig", str(dead_cluster), "-n", "ns")
    # no retry loop: a refused connection ends before the 15 s that a slow API would be given
    assert time.monotonic() - start < 15
    assert result.code == 2
    line = result.err.strip().splitlines()[-1]
    assert "the Kubernetes API at https://127.0.0.1:1 cannot be reached (connection refused" in line
    assert "fix: start the cluster" in line and "--kube-context" in line


@pytest.mark.slow
def test_helm_finding_the_cluster_unreachable_names_the_server(
    toolchain: dict[str, Path], dead_cluster: Path
) -> None:
    from archon.helm import ClusterUnreachable
    from archon.kube.config import resolve_target

    with pytest.raises(ClusterUnreachable) as info:
        Helm(resolve_target(dead_cluster)).status("archon", "ns")
    assert info.value.exit_code == 2
    assert info.value.line().startswith(
        "helm cannot reach the Kubernetes API at https://127.0.0.1:1; fix: start the cluster"
    )
