"""ArgoCD and Tekton status -> follower lines and exit codes, from recorded status objects
(tests/data/gitops, shapes cited in its README), plus the pure parts of both simulations."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from archon.errors import UsageError
from archon.gitops import argocd, tekton
from archon.gitops.objects import CrdsMissing
from archon.kube.follow import follow
from archon.simulation import argocd as argo_sim
from archon.simulation import tekton as tekton_sim

DATA = Path(__file__).parent / "data" / "gitops"


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class RecordedKube:
    """Answers GETs from recorded objects; each `advance()` moves to the next recording."""

    def __init__(self, frames: list[dict[str, Any]]) -> None:
        self.frames = frames
        self.index = 0

    def advance(self) -> None:
        self.index = min(self.index + 1, len(self.frames) - 1)

    def get(self, path: str, **query: str) -> Any:
        frame = self.frames[self.index]
        if path not in frame:
            from archon.kube.rest import KubeError

            raise KubeError(404, "NotFound", "not found", path)
        return json.loads(json.dumps(frame[path]))

    def items(self, path: str, **query: str) -> list[Any]:
        return []


# --- ArgoCD -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "done", "failed"),
    [
        ("app-healthy.json", True, ""),
        ("app-progressing.json", False, ""),
        ("app-degraded.json", False, "health Degraded"),
        ("app-sync-failed.json", False, "sync Failed: one or more objects failed to apply"),
        ("app-outofsync.json", False, ""),
    ],
)
def test_app_state_maps_recorded_status(fixture: str, done: bool, failed: str) -> None:
    state = argocd.app_state(_load(f"argocd/{fixture}"), want_operation=True)
    assert state.done is done
    assert state.failed.startswith(failed) if failed else state.failed == ""


def test_degraded_and_failed_name_the_resource() -> None:
    degraded = argocd.failing_resources(_load("argocd/app-degraded.json"))
    assert degraded == [
        'Deployment/archon-system/archon: Degraded: Deployment "archon" exceeded its progress '
        "deadline"
    ]
    failed = argocd.failing_resources(_load("argocd/app-sync-failed.json"))
    assert failed[0].startswith("Deployment/archon-system/archon: SyncFailed: Deployment.apps")
    assert "Deployment/archon-system/archon: Missing" in failed


def test_waiting_operation_is_pending_even_when_synced() -> None:
    app = _load("argocd/app-progressing.json")
    lines = argocd.app_lines(app)
    assert lines["operation"] == (
        "operation Running: waiting for healthy state of apps/Deployment/archon"
    )
    assert lines["res:Deployment/archon-system/archon"] == (
        "Deployment/archon-system/archon: Synced, Progressing (Waiting for rollout to finish: "
        "0 of 1 updated replicas are available...)"
    )
    # Without a requested operation, wait still refuses to call a running one done.
    assert not argocd.app_state(app, want_operation=False).done


def test_a_stale_succeeded_operation_does_not_end_a_new_sync() -> None:
    app = _load("argocd/app-healthy.json")
    app["operation"] = {"sync": {}, "initiatedBy": {"username": "archon"}}
    state = argocd.app_state(app, want_operation=True)
    assert not state.done and not state.failed


def test_follow_prints_each_change_once_and_ends_healthy() -> None:
    url = argocd.path("Application", "argocd", "archon")
    frames = [
        {url: _load("argocd/app-outofsync.json") | {"operation": {"sync": {}}}},
        {url: _load("argocd/app-progressing.json")},
        {url: _load("argocd/app-progressing.json")},
        {url: _load("argocd/app-healthy.json")},
    ]
    kube = RecordedKube(frames)
    watch = argocd.AppWatch(kube, "argocd", "archon", want_operation=True)  # type: ignore[arg-type]
    watch._pod_lines = dict  # type: ignore[method-assign]  # pods are the integration test's

    def poll() -> Any:
        snap = watch.snapshot()
        kube.advance()
        return snap

    clock = FakeClock()
    out = io.StringIO()
    result = follow(poll, timeout_s=60, out=out, clock=clock, sleep=clock.sleep)
    assert result.ok
    text = out.getvalue()
    assert text.count("operation Running: waiting for healthy state of apps/Deployment/archon") == 1
    assert "application/archon: sync Synced to 4f1c2d9e, health Healthy" in text
    assert "operation requested, waiting for the application-controller" in text


def test_follow_stops_on_degraded_naming_the_deployment() -> None:
    url = argocd.path("Application", "argocd", "archon")
    kube = RecordedKube([{url: _load("argocd/app-degraded.json")}])
    watch = argocd.AppWatch(kube, "argocd", "archon", want_operation=False)  # type: ignore[arg-type]
    watch._pod_lines = dict  # type: ignore[method-assign]
    clock = FakeClock()
    result = follow(watch.snapshot, timeout_s=60, out=io.StringIO(), clock=clock, sleep=clock.sleep)
    assert not result.ok
    assert result.reason.startswith("health Degraded; Deployment/archon-system/archon: Degraded")


def test_sync_body_is_what_sync_kubectl_documents() -> None:
    body = argocd.sync_body("abc123", True, ["ServerSideApply=true"])
    assert body == {
        "metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}},
        "operation": {
            "sync": {"prune": True, "syncOptions": ["ServerSideApply=true"], "revision": "abc123"},
            "initiatedBy": {"username": "archon"},
        },
    }


def test_parameters_land_in_the_helm_source() -> None:
    shipped = [d for d in argocd.shipped_documents(argocd.AppParams())]
    app = next(d for d in shipped if d["kind"] == "Application")
    params = argocd.AppParams(
        name="gpu2",
        repo="https://example.org/me/archon.git",
        revision="v1",
        values=["values/rx7900xtx.yaml"],
        sets=["gpu.count=2", "model.name=x/y"],
        dest_namespace="archon-rx7900xtx",
    )
    changed = argocd.parametrize(app, params)
    source = changed["spec"]["source"]
    assert changed["metadata"]["name"] == "gpu2"
    assert source["repoURL"] == "https://example.org/me/archon.git"
    assert source["targetRevision"] == "v1"
    assert source["helm"]["valueFiles"] == ["../../values/rx7900xtx.yaml"]
    assert source["helm"]["valuesObject"]["gpu"] == {"count": 2}
    assert source["helm"]["valuesObject"]["test"]["argocdPostSync"]["enabled"] is True
    assert changed["spec"]["destination"]["namespace"] == "archon-rx7900xtx"
    assert app["metadata"]["name"] == "archon"  # the shipped document is left alone


@pytest.mark.parametrize("bad", ["novalue", "=1", "a..b=1"])
def test_bad_set_is_unusable_input(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        argocd.parse_set([bad])
    assert err.value.key == "--set" and err.value.exit_code == 2


def test_non_argocd_manifest_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "cm.yaml"
    file.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    with pytest.raises(UsageError, match="not an ArgoCD object") as err:
        argocd.read_manifests([file], argocd.AppParams())
    assert err.value.exit_code == 2


# --- Tekton -------------------------------------------------------------------------------------


def _run(name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = _load(f"tekton/{name}")
    return data["pipelinerun"], data["taskruns"]


def test_run_state_succeeded_failed_cancelled_running() -> None:
    assert tekton.run_state(*_run("run-succeeded.json")).done
    failed = tekton.run_state(*_run("run-failed.json"))
    assert not failed.done
    assert failed.failing == (
        'task render-validate step validate: Failed: "step-validate" exited with code 1',
    )
    assert failed.failed.startswith("Failed: Tasks Completed: 4 (Failed: 1, Cancelled 0)")
    cancelled = tekton.run_state(*_run("run-cancelled.json"))
    assert cancelled.reason == "Cancelled" and cancelled.failed.startswith("Cancelled")
    running = tekton.run_state(*_run("run-running.json"))
    assert not running.done and not running.failed and running.reason == "Running"


def test_run_lines_name_tasks_steps_and_skips() -> None:
    lines = tekton.run_lines(*_run("run-failed.json"))
    assert lines["task:render-validate"] == (
        "task render-validate (taskrun/archon-f9q4m-render-validate): Failed at step validate: "
        '"step-validate" exited with code 1'
    )
    assert lines["task:deploy"] == "task deploy: skipped (PipelineRun was stopping)"
    assert lines["run"].startswith("pipelinerun/archon-f9q4m: Failed (Tasks Completed: 4")


def test_run_summary_for_scripts() -> None:
    report = tekton.summary(*_run("run-failed.json"))
    assert report["status"] == "False"
    failed = [t for t in report["tasks"] if t["status"] == "False"]
    assert failed == [
        {
            "task": "render-validate",
            "taskrun": "archon-f9q4m-render-validate",
            "status": "False",
            "reason": "Failed",
            "failed_step": "validate",
        }
    ]
    assert report["skipped"] == ["deploy", "smoke"]


DECLARED: list[dict[str, Any]] = [
    {"name": "values", "type": "array", "default": ["values/rtx5080.yaml"]},
    {"name": "namespace", "type": "string", "default": "archon-system"},
    {"name": "token", "type": "string"},
]


def test_build_run_checks_params_against_the_pipeline() -> None:
    with pytest.raises(UsageError, match="no parameter 'nmespace'") as err:
        tekton.build_run(
            None,
            pipeline="archon",
            params={"nmespace": "x", "token": "t"},
            workspaces=[],
            declared=DECLARED,
            namespace="ci",
        )
    assert err.value.exit_code == 2 and "namespace, token, values" in err.value.fix
    with pytest.raises(UsageError, match="needs parameter"):
        tekton.build_run(
            None, pipeline="archon", params={}, workspaces=[], declared=DECLARED, namespace="ci"
        )
    run = tekton.build_run(
        None,
        pipeline="archon",
        params={"values": "values/a.yaml,values/b.yaml", "token": "t"},
        workspaces=[tekton.parse_workspace("source=pvc:src")],
        declared=DECLARED,
        namespace="ci",
    )
    assert run["metadata"] == {"generateName": "archon-run-", "namespace": "ci"}
    assert {"name": "values", "value": ["values/a.yaml", "values/b.yaml"]} in run["spec"]["params"]
    assert run["spec"]["workspaces"] == [
        {"name": "source", "persistentVolumeClaim": {"claimName": "src"}}
    ]


@pytest.mark.parametrize("bad", ["source", "source=hostPath:/x", "source=pvc"])
def test_bad_workspace_is_unusable_input(bad: str) -> None:
    with pytest.raises(UsageError) as err:
        tekton.parse_workspace(bad)
    assert err.value.key == "--workspace" and bad in err.value.message


def test_cli_bad_param_exits_2_before_any_cluster_call(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = run_cli("tekton", "run", "--param", "oops", "--kubeconfig", str(tmp_path / "none"))
    assert result.code == 2
    assert result.err.strip() == "--param: 'oops' is not NAME=VALUE; fix: write --param k=v"


def test_cli_unknown_kubeconfig_exits_2_in_one_line(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    result = run_cli("argocd", "status", "archon", "--kubeconfig", str(tmp_path / "none"))
    assert result.code == 2
    assert len(result.err.strip().splitlines()) == 1 and "kubeconfig not found" in result.err


# --- the simulations' pure parts ----------------------------------------------------------------


def _deployment(**status: Any) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "archon", "generation": 2},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, **status},
    }


def test_deployment_health_follows_gitops_engine() -> None:
    assert argo_sim.health(_deployment(updatedReplicas=1, replicas=1, availableReplicas=1)) == (
        "Healthy",
        "",
    )
    assert argo_sim.health(_deployment(updatedReplicas=1, replicas=1)) == (
        "Progressing",
        "Waiting for rollout to finish: 0 of 1 updated replicas are available...",
    )
    stale = _deployment(updatedReplicas=1, availableReplicas=1) | {
        "metadata": {"name": "archon", "generation": 3}
    }
    assert argo_sim.health(stale)[0] == "Progressing"  # type: ignore[index]
    deadline = _deployment(
        conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    )
    assert argo_sim.health(deadline)[0] == "Degraded"  # type: ignore[index]
    assert argo_sim.health(None) == ("Missing", "")
    assert argo_sim.health({"kind": "ConfigMap"}) is None
    pvc = {"kind": "PersistentVolumeClaim", "status": {"phase": "Pending"}}
    assert argo_sim.health(pvc) == ("Progressing", "")


def test_sync_order_is_phase_wave_kind() -> None:
    def obj(kind: str, name: str, notes: dict[str, str] | None = None) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": {"name": name, "annotations": notes or {}},
        }

    tasks = argo_sim._tasks(
        [
            obj("Deployment", "server", {"argocd.argoproj.io/sync-wave": "0"}),
            obj("Job", "smoke", {"argocd.argoproj.io/hook": "PostSync"}),
            obj("Ingress", "web", {"argocd.argoproj.io/sync-wave": "1"}),
            obj("PersistentVolumeClaim", "cache"),
            obj("ConfigMap", "config", {"argocd.argoproj.io/sync-wave": "-1"}),
            obj("Pod", "helm-test", {"helm.sh/hook": "test"}),
            obj("Service", "server"),
        ]
    )
    assert [t.obj["metadata"]["name"] for t in tasks] == [
        "config",
        "cache",
        "server",
        "server",
        "web",
        "smoke",
    ]
    assert [t.obj["kind"] for t in tasks][1:4] == ["PersistentVolumeClaim", "Service", "Deployment"]
    assert tasks[-1].hook and tasks[-1].phase == "PostSync"


def test_tekton_substitution_dependencies_and_when() -> None:
    ctx: dict[str, Any] = {
        "params": {"values": ["a.yaml", "b.yaml"], "namespace": "ns"},
        "results": {"preflight": {"verdict": "WARN"}, "deploy": {"endpoint": "http://e/v1"}},
        "task_status": {"deploy": "Succeeded"},
        "aggregate": "Succeeded",
        "run": "r1",
    }
    assert tekton_sim.substitute(["$(params.values[*])"], ctx) == ["a.yaml", "b.yaml"]
    assert tekton_sim.substitute("$(tasks.deploy.results.endpoint)", ctx) == "http://e/v1"
    assert tekton_sim.substitute("$(tasks.status)/$(tasks.deploy.status)", ctx) == (
        "Succeeded/Succeeded"
    )
    smoke = {
        "name": "smoke",
        "params": [{"name": "e", "value": "$(tasks.deploy.results.endpoint)"}],
    }
    assert tekton_sim._deps(smoke) == {"deploy"}
    deploy = {
        "runAfter": ["render-validate"],
        "when": [
            {
                "input": "$(tasks.preflight.results.verdict)",
                "operator": "in",
                "values": ["PASS", "WARN"],
            }
        ],
    }
    assert tekton_sim._deps(deploy) == {"render-validate", "preflight"}
    assert tekton_sim._when_ok(deploy, ctx)
    ctx["results"]["preflight"]["verdict"] = "FAIL"
    assert not tekton_sim._when_ok(deploy, ctx)


def test_missing_crds_say_how_to_install_them() -> None:
    kube = RecordedKube([{}])
    with pytest.raises(CrdsMissing) as argo:
        argocd.require_crds(kube)  # type: ignore[arg-type]
    assert argo.value.exit_code == 2
    assert argo.value.line() == (
        "ArgoCD CRDs not installed in this cluster; fix: install ArgoCD (kubectl apply -k "
        "https://github.com/argoproj/argo-cd/manifests/crds?ref=v3.5.7) or run "
        "`archon cluster up --gitops`"
    )
    with pytest.raises(CrdsMissing) as tkn:
        tekton.require_crds(kube)  # type: ignore[arg-type]
    assert tkn.value.exit_code == 2 and "archon cluster up --gitops" in tkn.value.fix


def test_follow_a_run_to_its_failing_task() -> None:
    def frame(name: str) -> dict[str, Any]:
        run, taskruns = _run(name)
        objs = {tekton.path("PipelineRun", "archon-ci", "r"): run}
        for tr in taskruns:
            objs[tekton.path("TaskRun", "archon-ci", tr["metadata"]["name"])] = tr
        return objs

    running, failed = frame("run-running.json"), frame("run-failed.json")
    kube = RecordedKube([running, running, failed])
    watch = tekton.RunWatch(kube, "archon-ci", "r")  # type: ignore[arg-type]

    def poll() -> Any:
        snap = watch.snapshot()
        kube.advance()
        return snap

    clock = FakeClock()
    out = io.StringIO()
    result = follow(poll, timeout_s=60, out=out, clock=clock, sleep=clock.sleep)
    assert not result.ok
    assert result.reason.endswith(
        'task render-validate step validate: Failed: "step-validate" exited with code 1'
    )
    assert out.getvalue().count("task preflight (taskrun/archon-r5t1w-preflight): Running") == 1


def test_logs_stream_each_step_of_a_pod_until_it_ends() -> None:
    """The log endpoint is served here on loopback, as the API server proxies the kubelet's."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from kubernetes import client

    from archon.kube.rest import Kube

    seen: list[str] = []
    pods = {"archon-f9q4m-render-validate-pod", "archon-f9q4m-lint-pod"}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            seen.append(self.path)
            name = self.path.split("?")[0].rsplit("/", 2)
            if self.path.split("?")[0].endswith("/log"):
                container = self.path.split("container=")[1].split("&")[0]
                body = f"{container}: line one\n{container}: line two\n".encode()
                self.send_response(200)
                self.send_header("content-type", "text/plain")
            elif name[-1] in pods:
                body = json.dumps({"metadata": {"name": name[-1]}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
            else:
                body = json.dumps({"reason": "NotFound", "message": "not found"}).encode()
                self.send_response(404)
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.server_address[1]}"
        kube = Kube(client.ApiClient(configuration))
        run, taskruns = _run("run-failed.json")
        out = io.StringIO()
        streamed = tekton.logs(kube, run, taskruns[1:3], out=out, timeout_s=10)
    finally:
        server.shutdown()
        server.server_close()
    assert streamed == 2  # render-validate's two steps; preflight's pod is gone
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[preflight] pod archon-f9q4m-preflight-pod is gone; steps:")
    assert lines[1:] == [
        "[render-validate go] step-go: line one",
        "[render-validate go] step-go: line two",
        "[render-validate validate] step-validate: line one",
        "[render-validate validate] step-validate: line two",
    ]
    log_calls = [p for p in seen if "/log?" in p]
    assert log_calls[0] == (
        "/api/v1/namespaces/archon-ci/pods/archon-f9q4m-render-validate-pod/log"
        "?container=step-go&follow=true"
    )


def test_the_default_apply_carries_the_values_of_settings_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import yaml

    checkout = tmp_path / "fork"
    shutil.copytree(Path(__file__).resolve().parent.parent / "argocd", checkout / "argocd")
    (checkout / "charts").mkdir()
    settings = checkout / "argocd" / "settings.yaml"
    doc = yaml.safe_load(settings.read_text())
    doc["data"] |= {"repoURL": "https://git.example.org/me/fork.git", "targetRevision": "v9"}
    settings.write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(checkout)
    docs = argocd.shipped_documents(argocd.AppParams())
    app = next(d for d in docs if d["kind"] == "Application")
    assert app["spec"]["source"]["repoURL"] == "https://git.example.org/me/fork.git"
    assert app["spec"]["source"]["targetRevision"] == "v9"
    assert all(d["kind"] != "ConfigMap" for d in docs)  # the settings themselves are not applied


def test_an_object_without_a_name_is_refused_before_any_cluster_call(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    file = tmp_path / "app.yaml"
    file.write_text("apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec: {}\n")
    result = run_cli("argocd", "apply", "-f", str(file), "--kubeconfig", str(tmp_path / "none"))
    assert result.code == 2
    assert "metadata.name" in result.err and "internal error" not in result.err


def test_tekton_run_checks_params_against_the_folder_before_any_cluster_call(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    folder = Path(__file__).resolve().parent.parent / "ci" / "tekton"
    # the kubeconfig does not exist: reaching the cluster at all would be a different error
    result = run_cli(
        "tekton", "run", "--apply", str(folder), "-p", "nmespace=x",
        "--kubeconfig", str(tmp_path / "none"),
    )  # fmt: skip
    assert result.code == 2
    assert "nmespace" in result.err and "kubeconfig not found" not in result.err
    missing = run_cli("tekton", "run", "--apply", str(tmp_path / "typo"), "--kubeconfig", "x")
    assert missing.code == 2 and "not a folder" in missing.err
