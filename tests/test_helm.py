"""archon.helm: every verb through one runner (argument list, values on stdin, helm v4 flags),
and helm's failures as types. The fake helm records what it was given; the real one is used
where its own words matter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from archon.helm import (
    ClusterUnreachable,
    Helm,
    HelmError,
    HelmTimeout,
    ReleaseNotFound,
    RenderFailed,
    ResourceRejected,
    UpgradeFailed,
    classify,
    helm_error_line,
)
from archon.kube.config import resolve_target

FAKE_HELM = """#!{python}
import json, os, sys, time
args = sys.argv[1:]
record = {{"argv": args, "stdin": sys.stdin.read() if "-" in args else None}}
with open({log!r}, "a") as fh:
    fh.write(json.dumps(record) + "\\n")
script = json.loads(os.environ.get("FAKE_HELM", "{{}}")).get(args[0], {{}})
time.sleep(script.get("sleep", 0))
if "stderr" in script:
    sys.stderr.write(script["stderr"])
    sys.exit(1)
print(json.dumps(script.get("stdout", {{"name": args[1], "version": 1,
                                        "info": {{"status": "deployed", "notes": "hi"}}}})))
"""


@pytest.fixture
def fake_helm(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "calls.jsonl"
    helm = tmp_path / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable, log=str(log)))
    helm.chmod(0o755)
    return helm, log


def _calls(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _script(monkeypatch: pytest.MonkeyPatch, **verbs: object) -> None:
    monkeypatch.setenv("FAKE_HELM", json.dumps(verbs))


def test_upgrade_is_an_argument_list_with_v4_flags_and_values_on_stdin(
    fake_helm: tuple[Path, Path], tmp_path: Path, dead_cluster: Path
) -> None:
    helm_bin, log = fake_helm
    marker = tmp_path / "pwned"
    nasty = f"$(touch {marker}); `touch {marker}` && echo hi | cat > {marker}"
    helm = Helm(resolve_target(dead_cluster), executable=helm_bin)
    release = helm.upgrade_install(
        "rel;touch " + str(marker),
        "./chart dir",
        {"model": {"name": nasty}, "gone": None},
        namespace="ns",
        timeout_s=30,
    )
    assert (release.revision, release.status, release.notes) == (1, "deployed", "hi")
    assert not marker.exists()  # nothing was interpreted by a shell
    (call,) = _calls(log)
    argv = call["argv"]
    assert isinstance(argv, list)
    assert argv[:4] == ["upgrade", "rel;touch " + str(marker), "./chart dir", "--install"]
    # values on stdin, nulls kept: helm removes the chart default with them
    assert yaml.safe_load(str(call["stdin"])) == {"model": {"name": nasty}, "gone": None}
    for flag in ("--wait=watcher", "--rollback-on-failure", "--create-namespace", "--values"):
        assert flag in argv
    assert "--atomic" not in argv and "--wait" not in argv
    assert argv[argv.index("--timeout") + 1] == "30s"
    assert argv[-4:] == ["--kubeconfig", str(dead_cluster), "--kube-context", "ctx"]


def test_dry_run_is_server_side(fake_helm: tuple[Path, Path]) -> None:
    helm_bin, log = fake_helm
    Helm(executable=helm_bin).upgrade_install(
        "r", "c", {}, namespace="n", timeout_s=5, dry_run=True, wait=False,
        rollback_on_failure=False, create_namespace=False,
    )  # fmt: skip
    argv = _calls(log)[0]["argv"]
    assert isinstance(argv, list)
    assert "--dry-run=server" in argv and "--dry-run" not in argv
    assert "--create-namespace" not in argv and "--rollback-on-failure" not in argv


def test_offline_verbs_get_no_cluster_flags(
    fake_helm: tuple[Path, Path], dead_cluster: Path, tmp_path: Path
) -> None:
    helm_bin, log = fake_helm
    helm = Helm(resolve_target(dead_cluster), executable=helm_bin)
    helm.package(tmp_path / "chart", tmp_path / "out")
    helm.lint(tmp_path / "chart")
    package, lint = (c["argv"] for c in _calls(log))
    assert package == ["package", str(tmp_path / "chart"), "--destination", str(tmp_path / "out")]
    assert lint == ["lint", "--strict", str(tmp_path / "chart")]


def test_a_failed_upgrade_reads_the_rollback_from_the_history(
    fake_helm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    helm_bin, log = fake_helm
    history = [
        {"revision": 1, "status": "superseded", "description": "Install complete"},
        {"revision": 2, "status": "failed", "description": "Upgrade failed"},
        {"revision": 3, "status": "deployed", "description": "Rollback to 1"},
    ]
    # helm's own words say nothing about a rollback: the history does.
    _script(monkeypatch, upgrade={"stderr": "Error: context deadline exceeded\n"},
            history={"stdout": history})  # fmt: skip
    with pytest.raises(UpgradeFailed) as info:
        Helm(executable=helm_bin).upgrade_install("r", "c", {}, namespace="n", timeout_s=5)
    assert info.value.rolled_back and not info.value.removed
    assert info.value.line().startswith("context deadline exceeded")
    assert [c["argv"][0] for c in _calls(log)] == ["upgrade", "history"]  # type: ignore[index]


def test_a_failed_first_install_is_reported_as_removed(
    fake_helm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    helm_bin, _ = fake_helm
    _script(monkeypatch, upgrade={"stderr": "Error: resource not ready\n"},
            history={"stderr": "Error: release: not found\n"})  # fmt: skip
    with pytest.raises(UpgradeFailed) as info:
        Helm(executable=helm_bin).upgrade_install("r", "c", {}, namespace="n", timeout_s=5)
    assert info.value.removed and not info.value.rolled_back


def test_a_hung_helm_is_a_timeout(
    fake_helm: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    helm_bin, _ = fake_helm
    _script(monkeypatch, status={"sleep": 5})
    with pytest.raises(HelmTimeout, match="took longer than 1 s"):
        Helm(executable=helm_bin).run(["status", "r"], timeout_s=1)


def test_a_missing_helm_is_a_toolchain_error(tmp_path: Path) -> None:
    from archon.errors import ToolchainError

    with pytest.raises(ToolchainError, match="cannot run"):
        Helm(executable=tmp_path / "no-helm").run(["version"])


@pytest.mark.parametrize(
    ("verb", "stderr", "expected"),
    [
        ("status", "Error: release: not found", ReleaseNotFound),
        ("uninstall", "Error: uninstall: Release not loaded: r: release: not found",
         ReleaseNotFound),
        ("status", 'Error: kubernetes cluster unreachable: Get "https://127.0.0.1:1/version": '
         "dial tcp 127.0.0.1:1: connect: connection refused", ClusterUnreachable),
        ("history", "Error: etcdserver: request timed out; release: not found", ClusterUnreachable),
        ("template", "Error: execution error at (archon/templates/x.yaml:1:2): no", RenderFailed),
        ("upgrade", "Error: values don't meet the specifications of the schema(s)", RenderFailed),
        ("upgrade", 'Error: Deployment.apps "x" is invalid: spec.replicas: Invalid value',
         ResourceRejected),
        ("upgrade", "Error: UPGRADE FAILED: context deadline exceeded", UpgradeFailed),
        ("package", "Error: something else", HelmError),
    ],
)  # fmt: skip
def test_classify(verb: str, stderr: str, expected: type[HelmError]) -> None:
    error = classify(verb, stderr)
    assert type(error) is expected
    assert error.stderr == stderr and error.verb == verb
    assert "\n" not in error.line()


def test_helm_error_line_keeps_the_templates_message() -> None:
    stderr = (
        "Error: execution error at (archon/templates/server/deployment.yaml:3:4): "
        "strategy: surge needs a second GPU; fix: use Recreate\n"
    )
    assert helm_error_line(stderr) == "strategy: surge needs a second GPU; fix: use Recreate"
    assert helm_error_line("Error: chart not found\n") == "chart not found"
    assert helm_error_line("") == "helm failed without a message"


@pytest.mark.slow
@pytest.mark.parametrize("verb", ["status", "history", "uninstall", "list"])
def test_real_helm_on_a_dead_cluster_is_unreachable(
    toolchain: dict[str, Path], dead_cluster: Path, verb: str
) -> None:
    helm = Helm(resolve_target(dead_cluster))
    with pytest.raises(ClusterUnreachable) as info:
        if verb == "status":
            helm.status("archon", "ns")
        elif verb == "history":
            helm.history("archon", "ns")
        elif verb == "uninstall":
            helm.uninstall("archon", "ns", timeout_s=5)
        else:
            helm.releases("ns")
    assert info.value.line() == (
        "helm cannot reach the Kubernetes API at https://127.0.0.1:1; fix: start the cluster "
        "(`archon cluster up` for the local one) or choose another with --kubeconfig/--kube-context"
    )
    assert info.value.exit_code == 2
    assert "connection refused" in info.value.stderr  # helm's own words are kept


@pytest.mark.slow
def test_real_helm_template_fail_is_render_failed(
    toolchain: dict[str, Path], tiny_chart: Path
) -> None:
    with pytest.raises(RenderFailed) as info:
        Helm().template(tiny_chart, {"replicas": 3}, release="r", namespace="n")
    assert info.value.message == "replicas: more than 2 needs a second GPU; fix: set replicas <= 2"
