"""Failure drills on the real local cluster: an interrupted deploy, a release left pending by a
killed one, and two deploys at once. Every wait is bounded."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import threading
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
    from archon.cluster.lifecycle import _alive, _cluster_workdir, up

    proc = _start_hanging_upgrade(cluster, namespace, tmp_path, new_session=True)
    try:
        pid = int((_cluster_workdir() / "pids" / "kube-apiserver.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _until(lambda: not _alive(pid), 10, "the API server gone")
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


def test_a_deleted_server_pod_is_replaced_and_the_claim_stays_bound(
    cluster: Path, namespace: str, kube: Any, run_cli: Any
) -> None:
    result, _ = _deploy([NVIDIA], namespace)
    assert result.status == "deployed"
    claims = kube.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert len(claims) == 1 and claims[0]["status"]["phase"] == "Bound"
    claim_uid = claims[0]["metadata"]["uid"]
    (old,) = _servers(kube, namespace)
    kube.delete(f"/api/v1/namespaces/{namespace}/pods/{old['metadata']['name']}")

    def replaced() -> bool:
        now = _servers(kube, namespace)
        return (
            len(now) == 1 and now[0]["metadata"]["uid"] != old["metadata"]["uid"] and _ready(now[0])
        )

    _until(replaced, 90, "a new server pod Ready")
    (new,) = _servers(kube, namespace)
    assert new["spec"]["nodeName"] == old["spec"]["nodeName"]  # the one GPU came back to it
    claims = kube.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert [(c["metadata"]["uid"], c["status"]["phase"]) for c in claims] == [(claim_uid, "Bound")]
    mounted = [
        v["persistentVolumeClaim"]["claimName"]
        for v in new["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    ]
    assert mounted == [claims[0]["metadata"]["name"]]
    status = run_cli("status", "-n", namespace, "--kubeconfig", str(cluster))
    assert status.code == 0, status.err


def _servers(kube: Any, namespace: str) -> list[dict[str, Any]]:
    return [
        p
        for p in kube.items(
            f"/api/v1/namespaces/{namespace}/pods",
            labelSelector="app.kubernetes.io/instance=archon",
        )
        if p["metadata"]["name"].startswith("archon-server")
        and not p["metadata"].get("deletionTimestamp")
    ]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


# --- the API connection of a follower dropped -------------------------------------------------


class Cutter:
    """A TCP relay in front of the API server (TLS passes through untouched) that can cut every
    connection through it and refuse new ones until healed: a dropped connection and an API
    that is briefly unreachable, at a moment the test picks."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = int(self.listener.getsockname()[1])
        self.refused = 0
        self._open = threading.Event()
        self._open.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                down, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():
                self.refused += 1
                _reset(down)
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:  # the API server itself is away: the client sees a reset
                _reset(down)
                continue
            up.settimeout(None)
            with self._lock:
                self._live |= {down, up}
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                _reset(s)
                with self._lock:
                    self._live.discard(s)

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            live, self._live = self._live, set()
        for s in live:
            _reset(s)

    def heal(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed.set()
        self.cut()
        self.listener.close()
        self._thread.join(timeout=5)

    def kubeconfig(self, cluster: Path, into: Path) -> Path:
        """A copy of the cluster's kubeconfig that goes through this relay."""
        import yaml

        config = yaml.safe_load(cluster.read_text())
        for entry in config["clusters"]:
            server = entry["cluster"]["server"]
            entry["cluster"]["server"] = server.replace(f":{self.upstream[1]}", f":{self.port}")
        into.write_text(yaml.safe_dump(config))
        return into


def _reset(sock: socket.socket) -> None:
    """Close with RST, as a dropped peer or a middlebox timing out does."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def cutter(cluster: Path) -> Iterator[Cutter]:
    from urllib.parse import urlsplit

    import yaml

    server = yaml.safe_load(cluster.read_text())["clusters"][0]["cluster"]["server"]
    parts = urlsplit(server)
    relay = Cutter((parts.hostname or "127.0.0.1", int(parts.port or 443)))
    yield relay
    relay.close()


class Lines:
    """A child process's stdout, line by line, each wait bounded."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout

        def read() -> None:
            for line in stdout:
                self._queue.put(line.rstrip("\n"))
            self._queue.put(None)

        threading.Thread(target=read, daemon=True).start()

    def until(self, text: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:  # the process ended
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout_s} s: {self.seen}")


def _archon(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "archon", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _drop_the_connection(cutter: Cutter, lines: Lines) -> None:
    """Cut the follower's connection once it follows, keep the API away until it says so."""
    lines.until("s] ", 60)  # the follower's first line: `  [  0.0s] ...`
    cutter.cut()
    lines.until("(status unavailable", 60)
    assert cutter.refused >= 1  # it came back while the API was unreachable, and was refused
    cutter.heal()


APP = "it-dropped"
APP_DESTINATION = "archon-rtx5080"  # a destination the shipped AppProject allows


@pytest.fixture
def gitops(kube: Any) -> Iterator[Any]:
    """The ArgoCD and Tekton CRDs (no controllers), and this file's Application removed after."""
    from archon.gitops.argocd import path
    from archon.gitops.objects import get_or_none
    from archon.gitops.setup import install_gitops

    install_gitops(kube, out=io.StringIO())
    yield kube
    url = path("Application", "argocd", APP)
    if get_or_none(kube, url) is not None:
        kube.patch(url, {"metadata": {"finalizers": None}})
        kube.delete(url)
    drop_namespace(kube, APP_DESTINATION)


def test_argocd_wait_survives_a_dropped_connection(
    cluster: Path, gitops: Any, cutter: Cutter, tmp_path: Path, run_cli: Any
) -> None:
    from archon.gitops.argocd import checkout_root, sync, sync_body
    from archon.simulation.argocd import ArgoSimulation

    applied = run_cli(
        "argocd", "apply", "--name", APP, "--dest-namespace", APP_DESTINATION,
        "--kubeconfig", str(cluster),
    )  # fmt: skip
    assert applied.code == 0, applied.err
    # `wait` through the relay, no controller yet: it follows an Application that does not move.
    relayed = cutter.kubeconfig(cluster, tmp_path / "relayed")
    proc = _archon(
        "argocd", "wait", APP, "--simulate", "off", "--timeout", "150",
        "--kubeconfig", str(relayed),
    )  # fmt: skip
    try:
        lines = Lines(proc)
        _drop_the_connection(cutter, lines)
        sync(gitops, "argocd", APP, sync_body("", False, []))
        # Requested, not yet picked up by a controller: still going, which is not a problem.
        pending = run_cli("argocd", "status", APP, "-o", "json", "--kubeconfig", str(cluster))
        assert pending.code == 0, pending.err
        report = json.loads(pending.out)
        assert (report["ok"], report["done"], report["health"]) == (True, False, "Unknown")
        with ArgoSimulation(gitops, repo_root=checkout_root(), namespace="argocd"):
            code = proc.wait(timeout=180)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 0, (lines.seen, err)
    lines.until(f"application {APP!r} Synced and Healthy", 10)
    done = run_cli("argocd", "status", APP, "--kubeconfig", str(cluster))
    assert done.code == 0 and "sync Synced, health Healthy" in done.out


PIPELINE = {
    "apiVersion": "tekton.dev/v1",
    "kind": "Pipeline",
    "metadata": {"name": "it-dropped"},
    "spec": {
        "tasks": [
            {
                "name": "hello",
                "taskSpec": {"steps": [{"name": "hello", "image": "busybox", "script": "true"}]},
            }
        ]
    },
}


def test_tekton_run_survives_a_dropped_connection(
    cluster: Path, gitops: Any, cutter: Cutter, namespace: str, tmp_path: Path, run_cli: Any
) -> None:
    from archon.gitops.argocd import checkout_root
    from archon.gitops.setup import ensure_namespace
    from archon.gitops.tekton import apply_documents
    from archon.kube.config import resolve_target
    from archon.simulation.tekton import TektonSimulation

    ensure_namespace(gitops, namespace)
    apply_documents(gitops, [PIPELINE], namespace)
    relayed = cutter.kubeconfig(cluster, tmp_path / "relayed")
    proc = _archon(
        "tekton", "run", "--pipeline", "it-dropped", "-n", namespace, "--simulate", "off",
        "--timeout", "120", "--kubeconfig", str(relayed),
    )  # fmt: skip
    try:
        lines = Lines(proc)
        created = lines.until("created in namespace", 60)
        name = created.split()[0].removeprefix("pipelinerun/")
        _drop_the_connection(cutter, lines)
        # No controller has seen the run yet: Pending, still going, exit 0.
        pending = run_cli("tekton", "status", name, "-n", namespace, "--kubeconfig", str(cluster))
        assert pending.code == 0, pending.err
        assert f"pipelinerun {name!r}: Pending" in pending.out
        sim = TektonSimulation(
            gitops,
            namespace=namespace,
            target=resolve_target(cluster),
            repo_root=checkout_root(),
        )
        with sim:
            code = proc.wait(timeout=120)
        err = proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == 0, (lines.seen, err)
    lines.until(f"pipelinerun {name!r} Succeeded", 10)
    done = run_cli(
        "tekton", "status", name, "-n", namespace, "-o", "json", "--kubeconfig", str(cluster)
    )
    assert done.code == 0
    report = json.loads(done.out)
    assert (report["ok"], report["done"], report["reason"]) == (True, True, "Succeeded")
