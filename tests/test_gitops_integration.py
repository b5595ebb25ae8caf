"""Integration: `archon argocd` and `archon tekton` on the real local kube-apiserver with the real
upstream CRDs, the controllers played by the ArgoCD and Tekton SIMULATIONs (archon.simulation).

What is real here: the API server and its admission of every object, the scheduler placing the
pods on the fake GPU nodes, kwok running them, helm rendering the chart, helm installing it in
the pipeline's deploy task. The session's one cluster (the `cluster` fixture of conftest.py);
every wait is bounded.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
CI_NAMESPACE = "it-gitops-runs"


@pytest.fixture(scope="module")
def kube(kube: Any) -> Any:
    """The session's cluster, with the ArgoCD and Tekton CRDs and the runs' namespace."""
    from archon.gitops.setup import ensure_namespace, install_gitops

    install_gitops(kube, out=io.StringIO())
    ensure_namespace(kube, CI_NAMESPACE)
    return kube


@pytest.fixture
def cli(run_cli: Callable[..., Any], cluster: Path) -> Callable[..., Any]:
    def _run(*argv: str) -> Any:
        return run_cli(*argv, "--kubeconfig", str(cluster))

    return _run


def _wait_gone(kube: Any, path: str, timeout_s: float = 90) -> None:
    from archon.gitops.objects import get_or_none

    deadline = time.monotonic() + timeout_s
    while get_or_none(kube, path) is not None and time.monotonic() < deadline:
        time.sleep(0.5)


def _drop_namespace(kube: Any, name: str) -> None:
    kube.delete(f"/api/v1/namespaces/{name}")
    _wait_gone(kube, f"/api/v1/namespaces/{name}")


def _drop_app(kube: Any, name: str) -> None:
    """Remove an Application without a controller: drop its finalizer, then delete it."""
    from archon.gitops.argocd import path
    from archon.gitops.objects import get_or_none

    url = path("Application", "argocd", name)
    if get_or_none(kube, url) is not None:
        kube.patch(url, {"metadata": {"finalizers": None}})
        kube.delete(url)


# --- ArgoCD -------------------------------------------------------------------------------------


def test_sync_to_healthy_then_delete_keeps_the_model_cache(kube: Any, cli: Any) -> None:
    app, namespace = "it-healthy", "archon-rtx5080"
    try:
        applied = cli("argocd", "apply", "--name", app, "--dest-namespace", namespace)
        assert applied.code == 0, applied.err
        assert "application/argocd/it-healthy applied (server-side)" in applied.out

        synced = cli("argocd", "sync", app, "--simulate", "on", "--timeout", "150", "-o", "json")
        assert synced.code == 0, synced.err
        report = json.loads(synced.out)
        assert (report["sync"], report["health"]) == ("Synced", "Healthy")
        assert report["operation"]["phase"] == "Succeeded"
        assert "ArgoCD SIMULATION (no application-controller here)" in synced.err
        kinds = {r["kind"]: r for r in report["resources"]}
        assert kinds["Deployment"]["health"] == "Healthy"
        assert kinds["PersistentVolumeClaim"]["health"] == "Healthy"
        # the scheduler, not the simulation, placed the server on the NVIDIA node
        pods = kube.items(
            f"/api/v1/namespaces/{namespace}/pods",
            labelSelector="app.kubernetes.io/instance=archon",
        )
        servers = [p for p in pods if p["metadata"]["name"].startswith("archon-server")]
        assert servers and servers[0]["spec"]["nodeName"] == "gpu-rtx5080-0"

        status = cli("argocd", "status", app)
        assert status.code == 0 and "health Healthy" in status.out

        deleted = cli("argocd", "delete", app, "--simulate", "on", "--timeout", "90")
        assert deleted.code == 0, deleted.err
        assert "kept (sync-options Delete=false): PersistentVolumeClaim/archon-model-cache" in (
            deleted.out
        )
        pvc = kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/archon-model-cache")
        assert not pvc["metadata"].get("deletionTimestamp")
        _wait_gone(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/archon-server")
        from archon.gitops.objects import get_or_none

        assert (
            get_or_none(kube, f"/apis/apps/v1/namespaces/{namespace}/deployments/archon-server")
            is None
        )
    finally:
        _drop_app(kube, app)
        _drop_namespace(kube, namespace)


def test_unschedulable_pod_exits_1_naming_it(kube: Any, cli: Any) -> None:
    app, namespace = "it-two-gpus", "archon-rx7900xtx"
    two_gpus = ["gpu.count=2", "gpu.nodeCapacity=2", "model.tensorParallelSize=2"]
    try:
        sets = [arg for value in two_gpus for arg in ("--set", value)]
        applied = cli("argocd", "apply", "--name", app, "--dest-namespace", namespace, *sets)
        assert applied.code == 0, applied.err
        synced = cli("argocd", "sync", app, "--simulate", "on", "--timeout", "25")
        assert synced.code == 1
        line = synced.err.strip().splitlines()[-1]
        assert line.startswith("application 'it-two-gpus' not Synced and Healthy after 25 s")
        assert "health Progressing" in line
        assert "Deployment/archon-rx7900xtx/archon-server: Progressing" in line
        assert "pod/archon-server-" in line and "not scheduled" in line
        assert "Insufficient nvidia.com/gpu" in line
        assert "waiting for healthy state of apps/Deployment/archon-server" in synced.out
    finally:
        _drop_app(kube, app)
        _drop_namespace(kube, namespace)


def test_unknown_application_is_unusable_input(kube: Any, cli: Any) -> None:
    result = cli("argocd", "sync", "no-such-app", "--simulate", "off")
    assert result.code == 2
    assert "application 'no-such-app' not found in namespace 'argocd'" in result.err


# --- Tekton -------------------------------------------------------------------------------------


def _run_args(*extra: str) -> list[str]:
    return [
        "tekton",
        "run",
        "--apply",
        str(REPO_ROOT / "ci" / "tekton"),
        "-n",
        CI_NAMESPACE,
        *extra,
    ]


def test_pipeline_passes_and_deploys_for_real(kube: Any, cli: Any) -> None:
    target = "it-tekton-deploy"
    try:
        params = ["--param", "values=values/rx7900xtx.yaml", "--param", f"namespace={target}"]
        result = cli(*_run_args(*params, "--simulate", "on", "--timeout", "300", "-o", "json"))
        assert result.code == 0, result.err
        report = json.loads(result.out)
        assert report["status"] == "True" and report["reason"] == "Succeeded"
        tasks = {t["task"]: t for t in report["tasks"]}
        assert set(tasks) >= {"lint", "preflight", "render-validate", "deploy", "smoke", "report"}
        assert all(t["status"] == "True" for t in tasks.values())
        deploy_run = kube.get(
            f"/apis/tekton.dev/v1/namespaces/{CI_NAMESPACE}/taskruns/{tasks['deploy']['taskrun']}"
        )
        results = {r["name"]: r["value"] for r in deploy_run["status"]["results"]}
        assert results["endpoint"] == f"http://archon-server.{target}.svc:8000/v1"
        # the deploy task really deployed: the release's pod is on the AMD node
        pods = kube.items(f"/api/v1/namespaces/{target}/pods")
        assert any(p["spec"].get("nodeName") == "gpu-rx7900xtx-0" for p in pods)
        assert "Tekton SIMULATION" in result.err
    finally:
        _drop_namespace(kube, target)


def test_failing_task_is_named_with_its_step(kube: Any, cli: Any) -> None:
    result = cli(
        *_run_args(
            "--param",
            "values=values/missing.yaml",
            "--simulate",
            "on",
            "--timeout",
            "120",
            "-o",
            "json",
        )
    )
    assert result.code == 1
    report = json.loads(result.out)
    assert report["reason"] == "Failed"
    assert report["failing"][0].startswith(
        'task lint step lint: Failed: "step-lint" exited with code 1'
    )
    assert "missing.yaml" in report["failing"][0]
    assert set(report["skipped"]) == {"preflight", "render-validate", "deploy", "smoke"}
    finally_task = [t for t in report["tasks"] if t["task"] == "report"]
    assert finally_task and finally_task[0]["status"] == "True"


def test_forced_failure_hook_names_task_and_step(
    kube: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHON_TEKTON_SIM_FAIL", "render-validate")
    result = cli(*_run_args("--simulate", "on", "--timeout", "120"))
    assert result.code == 1
    line = result.err.strip().splitlines()[-1]
    assert "task render-validate step validate: Failed" in line
    assert "forced failure (simulation test hook)" in line


def test_cancel_stops_the_run(kube: Any, cli: Any, cluster: Path) -> None:
    from archon.gitops import tekton
    from archon.gitops.argocd import checkout_root
    from archon.kube.config import resolve_target
    from archon.simulation.tekton import TektonSimulation

    target = resolve_target(cluster)
    sim = TektonSimulation(
        kube,
        namespace=CI_NAMESPACE,
        target=target,
        repo_root=checkout_root(),
        delays={"lint": 60.0},
    )
    with sim:
        started = cli(*_run_args("--simulate", "off", "--no-wait", "-o", "json"))
        assert started.code == 0, started.err
        name = json.loads(started.out)["pipelinerun"]
        deadline = time.monotonic() + 30
        lint = f"{name}-lint"
        while time.monotonic() < deadline:
            if any(
                tr["metadata"]["name"] == lint
                for tr in kube.items(tekton.path("TaskRun", CI_NAMESPACE))
            ):
                break
            time.sleep(0.3)
        cancelled = cli(
            "tekton", "cancel", name, "-n", CI_NAMESPACE, "--simulate", "off", "--timeout", "30"
        )
    assert cancelled.code == 0, cancelled.err
    assert f"pipelinerun '{name}' cancelled" in cancelled.out
    run = kube.get(tekton.path("PipelineRun", CI_NAMESPACE, name))
    cond = next(c for c in run["status"]["conditions"] if c["type"] == "Succeeded")
    assert (cond["status"], cond["reason"]) == ("False", "Cancelled")
    taskrun = kube.get(tekton.path("TaskRun", CI_NAMESPACE, lint))
    assert taskrun["spec"]["status"] == "TaskRunCancelled"
    assert [c["reason"] for c in taskrun["status"]["conditions"]] == ["TaskRunCancelled"]
    assert {s["name"] for s in run["status"]["skippedTasks"]} >= {"preflight", "deploy"}

    shown = cli("tekton", "status", name, "-n", CI_NAMESPACE)
    assert shown.code == 1 and "Cancelled" in shown.err
    logs = cli("tekton", "logs", name, "-n", CI_NAMESPACE, "--timeout", "5")
    assert logs.code == 0 and "[lint] no pod" in logs.out


def test_unknown_param_exits_2_naming_it(kube: Any, cli: Any) -> None:
    result = cli(*_run_args("--param", "nmespace=x", "--simulate", "off"))
    assert result.code == 2
    assert "--param: the pipeline has no parameter 'nmespace'" in result.err
    assert "namespace" in result.err.split("use one of:")[1]


def test_a_task_left_running_by_a_stopped_simulation_fails_and_is_never_rerun(
    kube: Any, cli: Any, cluster: Path
) -> None:
    from archon.gitops import tekton
    from archon.gitops.argocd import checkout_root
    from archon.kube.config import resolve_target
    from archon.simulation.tekton import ORPHANED, TektonSimulation

    def sim(**extra: Any) -> TektonSimulation:
        return TektonSimulation(
            kube,
            namespace=CI_NAMESPACE,
            target=resolve_target(cluster),
            repo_root=checkout_root(),
            **extra,
        )

    started = cli(*_run_args("--simulate", "off", "--no-wait", "-o", "json"))
    name = json.loads(started.out)["pipelinerun"]
    lint = tekton.path("TaskRun", CI_NAMESPACE, f"{name}-lint")
    with sim(delays={"lint": 60.0}, stop_grace_s=0.5):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if any(
                t["metadata"]["name"] == f"{name}-lint" for t in kube.items(lint.rsplit("/", 1)[0])
            ):
                break
            time.sleep(0.3)
    ended = kube.get(lint)["status"]["conditions"][0]
    assert (ended["status"], ended["reason"]) == ("False", "Failed")
    assert ORPHANED in ended["message"]
    with sim():  # a later simulation finishes the run; it does not run lint again
        followed = cli("tekton", "status", name, "-n", CI_NAMESPACE)
        deadline = time.monotonic() + 30
        while followed.code != 1 or "Failed" not in followed.err:
            assert time.monotonic() < deadline, followed.err
            time.sleep(0.5)
            followed = cli("tekton", "status", name, "-n", CI_NAMESPACE)
    assert "task lint step lint: Failed" in followed.err
