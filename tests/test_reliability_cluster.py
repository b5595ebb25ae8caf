"""Failure drills on the real local cluster: an interrupted deploy, a release left pending by a
killed one, and two deploys at once. Every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster_support import drop_namespace
from test_cluster_integration import NVIDIA, _deploy, _values

pytestmark = pytest.mark.integration

HANG_S = 30  # helm --timeout of an upgrade that can never become Ready (two GPUs on one)


def _helm(cluster: Path) -> Any:
    from archon.cluster.lifecycle import local_target
    from archon.helm import Helm

    return Helm(local_target())


def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def _start_hanging_upgrade(
    cluster: Path, namespace: str, tmp_path: Path, *, new_session: bool = False
) -> subprocess.Popen[str]:
    """`archon deploy` of a revision whose pod can never be scheduled, in its own process."""
    _deploy([NVIDIA], namespace)
    two = _values(
        tmp_path,
        "two-gpus.yaml",
        {"gpu": {"count": 2, "nodeCapacity": 2}, "model": {"tensorParallelSize": 2}},
    )
    argv = [
        sys.executable, "-m", "archon", "deploy", "-f", str(NVIDIA), "-f", str(two),
        "-n", namespace, "--timeout", str(HANG_S), "--kubeconfig", str(cluster),
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    helm = _helm(cluster)
    _until(lambda: helm.pending("archon", namespace) is not None, 60, "upgrade pending")
    return proc


def _finish(proc: subprocess.Popen[str], timeout_s: float) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout_s)
    return proc.returncode, out, err


@pytest.fixture(params=["pid", "group"])
def to(request: pytest.FixtureRequest, kube: Any) -> Iterator[str]:
    """Where SIGINT goes; each case in a namespace of its own (deleted afterwards)."""
    yield str(request.param)
    drop_namespace(kube, f"it-sigint-{request.param}")


def test_sigint_stops_helm_and_reports_the_state(
    cluster: Path, tmp_path: Path, run_cli: Any, to: str
) -> None:
    namespace = f"it-sigint-{to}"
    proc = _start_hanging_upgrade(cluster, namespace, tmp_path, new_session=True)
    try:
        # Meanwhile a second deploy is told, in one line, that the release is busy.
        second = run_cli("deploy", "-f", str(NVIDIA), "-n", namespace, "--kubeconfig", str(cluster))
        assert second.code == 1
        line = second.err.strip().splitlines()[-1]
        assert "another operation is in progress (pending-upgrade at revision 2)" in line
        assert "roll back to revision 1" in line and line.count("fix:") == 1
        # "pid": only Archon's own pid gets it (a wrapper script or an IDE sends it so);
        # "group": helm gets it as well (Ctrl-C in a terminal).
        start = time.monotonic()
        if to == "pid":
            proc.send_signal(signal.SIGINT)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        code, _, err = _finish(proc, HANG_S + 30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 130, err
    assert time.monotonic() - start < HANG_S  # helm was cancelled, not left to time out
    last = err.strip().splitlines()[-1]
    assert "interrupted: release 'archon' is at revision 3, deployed" in last, err
    revisions = _helm(cluster).history("archon", namespace)
    assert [r.status for r in revisions][-1] == "deployed"
    assert _helm(cluster).pending("archon", namespace) is None


def test_a_release_left_pending_is_recovered(
    cluster: Path, namespace: str, tmp_path: Path, run_cli: Any
) -> None:
    # A deploy killed outright (SIGKILL to its whole group, helm included) leaves the release
    # pending-upgrade: helm itself refuses every change from then on.
    proc = _start_hanging_upgrade(cluster, namespace, tmp_path, new_session=True)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    helm = _helm(cluster)
    pending = helm.pending("archon", namespace)
    assert pending is not None and pending.rollback_to == 1

    status = run_cli("status", "-n", namespace, "--kubeconfig", str(cluster))
    assert "pending-upgrade" in status.out
    assert "`archon deploy --recover -f ...` will roll back to revision 1" in status.out

    refused = run_cli("deploy", "-f", str(NVIDIA), "-n", namespace, "--kubeconfig", str(cluster))
    assert refused.code == 1
    assert "another operation is in progress" in refused.err.strip().splitlines()[-1]

    recovered = run_cli(
        "deploy", "-f", str(NVIDIA), "-n", namespace, "--recover", "--kubeconfig", str(cluster)
    )
    assert recovered.code == 0, recovered.err
    assert "recovering release 'archon' (pending-upgrade at revision 2)" in recovered.out
    assert helm.history("archon", namespace)[-1].status == "deployed"


def test_the_apiserver_killed_mid_deploy(
    cluster: Path, namespace: str, tmp_path: Path, kube: Any, run_cli: Any
) -> None:
    # The API server dies while helm waits for an upgrade that cannot become Ready; `cluster up`
    # brings it back. The deploy ends with one line; when helm could not roll back, the line
    # says how to end the pending operation, and that works: the previous revision serves again
    # and no pod is left stuck Terminating.
    import io

    from archon.cluster.lifecycle import _cluster_workdir, up

    proc = _start_hanging_upgrade(cluster, namespace, tmp_path, new_session=True)
    try:
        pid = int((_cluster_workdir() / "pids" / "kube-apiserver.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        time.sleep(2)
        up(None, out=io.StringIO())
        code, _, err = _finish(proc, 2 * HANG_S + 90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code in (1, 2), err
    last = err.strip().splitlines()[-1]
    assert "internal error" not in last and last.count("fix:") == 1, err
    helm = _helm(cluster)
    if helm.pending("archon", namespace) is None:
        # the API came back in time for helm's own rollback, and the line says so
        assert "rolled back to the previous revision" in last, err
    else:
        # helm could not roll back without the API: the line names the way out, and it works
        assert "`archon deploy --recover -f ...`" in last, err
        recovered = run_cli(
            "deploy", "-f", str(NVIDIA), "-n", namespace, "--recover", "--kubeconfig", str(cluster)
        )
        assert recovered.code == 0, recovered.err
    assert helm.history("archon", namespace)[-1].status == "deployed"
    stuck = [
        p["metadata"]["name"]
        for p in kube.items(f"/api/v1/namespaces/{namespace}/pods")
        if p["metadata"].get("deletionTimestamp")
    ]
    _until(
        lambda: (
            not [
                p
                for p in kube.items(f"/api/v1/namespaces/{namespace}/pods")
                if p["metadata"].get("deletionTimestamp")
            ]
        ),
        60,
        f"pods still terminating: {stuck}",
    )
