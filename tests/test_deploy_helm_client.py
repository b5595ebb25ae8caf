"""The pyhelm3 subclass runs helm with exec (no shell), values on stdin, v4 flags."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from pyhelm3 import errors

from archon.helm_client import ExecCommand, classify, helm_command

FAKE_HELM = """#!{python}
import json, sys
record = {{"argv": sys.argv[1:], "stdin": sys.stdin.read() if "-" in sys.argv else None}}
with open({log!r}, "a") as fh:
    fh.write(json.dumps(record) + "\\n")
if "fail" in sys.argv:
    sys.stderr.write("Error: UPGRADE FAILED: release: not found\\n")
    sys.exit(1)
print(json.dumps({{"name": sys.argv[2], "version": 1, "info": {{"status": "deployed"}}}}))
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


def test_shell_metacharacters_pass_through_literally(
    fake_helm: tuple[Path, Path], tmp_path: Path
) -> None:
    helm, log = fake_helm
    marker = tmp_path / "pwned"
    nasty = f"$(touch {marker}); `touch {marker}` && echo hi | cat > {marker}"
    command = helm_command(tmp_path / "kubeconfig", executable=helm)
    release = asyncio.run(
        command.install_or_upgrade(
            "rel;touch " + str(marker),
            "./chart dir",
            {"model": {"name": nasty}},
            atomic=True,
            wait=True,
            namespace="ns",
            timeout="30s",
        )
    )
    assert release["info"]["status"] == "deployed"
    assert not marker.exists()  # nothing was interpreted by a shell
    (call,) = _calls(log)
    argv = call["argv"]
    assert isinstance(argv, list)
    assert argv[:3] == ["upgrade", "rel;touch " + str(marker), "./chart dir"]
    assert json.loads(str(call["stdin"])) == {"model": {"name": nasty}}  # values on stdin
    assert "--rollback-on-failure" in argv and "--wait" in argv
    assert argv[-2:] == ["--kubeconfig", str(tmp_path / "kubeconfig")]


def test_dry_run_is_server_side(fake_helm: tuple[Path, Path]) -> None:
    helm, log = fake_helm
    command = ExecCommand(executable=str(helm))
    asyncio.run(command.install_or_upgrade("r", "c", {}, dry_run=True))
    argv = _calls(log)[0]["argv"]
    assert isinstance(argv, list)
    assert "--dry-run=server" in argv and "--dry-run" not in argv


def test_errors_keep_pyhelm3_classification(fake_helm: tuple[Path, Path]) -> None:
    helm, _ = fake_helm
    command = ExecCommand(executable=str(helm))
    with pytest.raises(errors.ReleaseNotFoundError) as info:
        asyncio.run(command.run(["fail"]))
    assert b"release: not found" in info.value.stderr


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (b"Error: context canceled", errors.CommandCancelledError),
        (b"etcdserver: request timed out; release: not found", errors.ConnectionError),
        (b"execution error at (archon/templates/x.yaml:1:2): no", errors.FailedToRenderChartError),
        (b'Deployment.apps "x" is invalid: spec', errors.InvalidResourceError),
        (b'chart "nope" not found', errors.ChartNotFoundError),
        (b"something else", errors.Error),
    ],
)
def test_classify(stderr: bytes, expected: type[Exception]) -> None:
    assert classify(stderr) is expected
