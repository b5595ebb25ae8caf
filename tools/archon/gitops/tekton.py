"""Tekton Pipelines through the Kubernetes API: a PipelineRun is created from a manifest or for a
named Pipeline, followed through its `Succeeded` condition and its child TaskRuns
(`status.childReferences`), and cancelled with `spec.status: Cancelled` (tektoncd/pipeline
docs/pipelineruns.md). No `tkn` needed; whichever Tekton controller watches the cluster (the
real one, or archon.simulation.tekton on the local cluster) runs it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from archon.errors import UsageError
from archon.gitops.objects import (
    ControllerApi,
    condition,
    get_or_none,
    load_documents,
    object_path,
)
from archon.kube.follow import FollowResult, Snapshot, follow
from archon.kube.rest import Kube, KubeError, Obj

GROUP_VERSION = "tekton.dev/v1"
PLURALS = {
    "Task": "tasks",
    "Pipeline": "pipelines",
    "PipelineRun": "pipelineruns",
    "TaskRun": "taskruns",
}
DEFAULT_NAMESPACE = "archon-ci"
CRD_VERSION = "v1.0.0"
INSTALL_FIX = (
    "install Tekton Pipelines (kubectl apply -f https://infra.tekton.dev/tekton-releases/"
    f"pipeline/previous/{CRD_VERSION}/release.yaml) or run `archon cluster up --gitops`"
)
CANCEL_STATES = ("Cancelled", "CancelledRunFinally", "StoppedRunFinally")
WORKSPACE_KINDS = ("emptyDir", "pvc", "configmap", "secret", "volumeClaimTemplate")


API = ControllerApi("Tekton", GROUP_VERSION, PLURALS, "pipelineruns.tekton.dev", INSTALL_FIX)
path = API.path
require_crds = API.require_crds


def folder_documents(folder: Path) -> list[Obj]:
    """The Tasks, Pipelines and RBAC of a folder, read and checked before anything is applied
    (PipelineRuns and kustomize's own file excluded: a run is created by `run`, never applied)."""
    if not folder.is_dir():
        raise UsageError("not a folder", key="--apply", source=str(folder), fix="pass ci/tekton")
    docs = []
    for file in sorted(folder.glob("*.yaml")):
        for doc in load_documents(file):
            meta = doc.get("metadata")
            if doc["kind"] in ("PipelineRun", "TaskRun", "Kustomization"):
                continue
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                raise UsageError(
                    f"a {doc['kind']} without metadata.name",
                    source=str(file),
                    key="metadata.name",
                    fix="name every object",
                )
            docs.append(doc)
    return docs


def apply_documents(kube: Kube, docs: list[Obj], namespace: str) -> list[str]:
    """Server-side apply; objects without a namespace go to `namespace`, and a namespace an
    object names is created when missing."""
    applied = []
    for doc in docs:
        meta = doc["metadata"]
        url = object_path(kube, doc, namespace)
        named = meta.get("namespace")
        if named and named != namespace:
            ns_url = f"/api/v1/namespaces/{quote(named)}"
            if get_or_none(kube, ns_url) is None:
                ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": named}}
                kube.apply(ns_url, ns)
                applied.append(f"namespace/{named}")
        kube.apply(url, doc)
        applied.append(f"{doc['kind'].lower()}/{meta['name']}")
    return applied


def parse_params(items: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{item!r} is not NAME=VALUE", key="--param", fix="write --param k=v")
        params[key] = value
    return params


def parse_workspace(item: str) -> Obj:
    """`NAME=emptyDir`, `NAME=pvc:CLAIM`, `NAME=configmap:NAME`, `NAME=secret:NAME` or
    `NAME=volumeClaimTemplate:SIZE`, as a PipelineRun workspace binding."""
    name, sep, spec = item.partition("=")
    kind, _, arg = spec.partition(":")
    if not sep or not name or kind not in WORKSPACE_KINDS or (kind != "emptyDir" and not arg):
        raise UsageError(
            f"{item!r} is not a workspace binding",
            key="--workspace",
            fix="write NAME=emptyDir, NAME=pvc:CLAIM, NAME=configmap:NAME, NAME=secret:NAME "
            "or NAME=volumeClaimTemplate:1Gi",
        )
    if kind == "emptyDir":
        return {"name": name, "emptyDir": {}}
    if kind == "pvc":
        return {"name": name, "persistentVolumeClaim": {"claimName": arg}}
    if kind == "configmap":
        return {"name": name, "configMap": {"name": arg}}
    if kind == "secret":
        return {"name": name, "secret": {"secretName": arg}}
    return {
        "name": name,
        "volumeClaimTemplate": {
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": arg}}}
        },
    }


def pipeline_spec(kube: Kube, run: Obj, namespace: str) -> Obj:
    spec = run.get("spec") or {}
    if isinstance(spec.get("pipelineSpec"), dict):
        return dict(spec["pipelineSpec"])
    name = str((spec.get("pipelineRef") or {}).get("name") or "")
    if not name:
        raise UsageError(
            "the PipelineRun names no pipelineRef.name and has no pipelineSpec",
            key="spec.pipelineRef.name",
            fix="name a Pipeline with --pipeline",
        )
    pipeline = get_or_none(kube, path("Pipeline", namespace, name))
    if pipeline is None:
        raise UsageError(
            f"pipeline {name!r} not found in namespace {namespace!r}",
            key="--pipeline",
            fix="apply it first (`archon tekton run --apply ci/tekton`, or kubectl apply -f "
            "ci/tekton/)",
        )
    return dict(pipeline.get("spec") or {})


def build_run(
    template: Obj | None,
    *,
    pipeline: str,
    params: dict[str, str],
    workspaces: list[Obj],
    declared: list[Obj],
    namespace: str,
) -> Obj:
    """The PipelineRun to create: the template (or a bare run of `pipeline`) with the
    parameters and workspaces given, checked against what the Pipeline declares."""
    run: Obj = (
        copy.deepcopy(template)
        if template
        else {
            "apiVersion": GROUP_VERSION,
            "kind": "PipelineRun",
            "metadata": {"generateName": f"{pipeline}-run-"},
            "spec": {"pipelineRef": {"name": pipeline}},
        }
    )
    meta = run.setdefault("metadata", {})
    meta["namespace"] = namespace
    if meta.get("name") and not meta.get("generateName"):
        meta["generateName"] = f"{meta.pop('name')}-"
    spec = run.setdefault("spec", {})
    if pipeline and template:
        spec.pop("pipelineSpec", None)
        spec["pipelineRef"] = {"name": pipeline}
    known = {str(p.get("name")): p for p in declared}
    for key in params:
        if key not in known:
            raise UsageError(
                f"the pipeline has no parameter {key!r}",
                key="--param",
                fix=f"use one of: {', '.join(sorted(known)) or '(none declared)'}",
            )
    given = {str(p["name"]): p for p in spec.get("params") or []}
    for key, value in params.items():
        kind = known[key].get("type", "string")
        given[key] = {"name": key, "value": value.split(",") if kind == "array" else value}
    missing = [k for k, p in known.items() if k not in given and "default" not in p]
    if missing:
        raise UsageError(
            f"the pipeline needs parameter(s) {', '.join(missing)}",
            key="--param",
            fix=f"pass --param {missing[0]}=VALUE",
        )
    spec["params"] = list(given.values())
    bound = {str(w["name"]): w for w in spec.get("workspaces") or []}
    for ws in workspaces:
        bound[ws["name"]] = ws
    if bound:
        spec["workspaces"] = list(bound.values())
    return run


def create(kube: Kube, run: Obj) -> Obj:
    ns = run["metadata"]["namespace"]
    try:
        return kube.create(path("PipelineRun", ns), run)
    except KubeError as exc:
        if exc.status in (400, 422):
            raise UsageError(
                f"the API server refused the PipelineRun: {exc.message}",
                key="PipelineRun",
                fix="correct the run's fields named above",
            ) from exc
        raise


def get_run(kube: Kube, namespace: str, name: str) -> Obj:
    run = get_or_none(kube, path("PipelineRun", namespace, name))
    if run is None:
        known = [r["metadata"]["name"] for r in kube.items(path("PipelineRun", namespace))]
        raise UsageError(
            f"pipelinerun {name!r} not found in namespace {namespace!r}",
            key="RUN",
            fix=f"use one of: {', '.join(known[-5:])}" if known else "start one: archon tekton run",
        )
    return run


def cancel(kube: Kube, namespace: str, name: str, *, state: str = "Cancelled") -> Obj:
    if state not in CANCEL_STATES:
        raise UsageError(f"{state!r} is not a cancel state", fix=f"use {', '.join(CANCEL_STATES)}")
    get_run(kube, namespace, name)
    return kube.patch(path("PipelineRun", namespace, name), {"spec": {"status": state}})


# --- status -> follower lines and an outcome --------------------------------------------------


def failed_step(taskrun: Obj) -> str:
    """The first step that ended with a non-zero exit code, else the first not completed."""
    steps = (taskrun.get("status") or {}).get("steps") or []
    for step in steps:
        terminated = step.get("terminated") or {}
        if terminated and int(terminated.get("exitCode") or 0) != 0:
            return str(step.get("name"))
    for step in steps:
        if not step.get("terminated"):
            return str(step.get("name"))
    return ""


def children(kube: Kube, run: Obj) -> list[Obj]:
    ns = run["metadata"]["namespace"]
    found = []
    for ref in (run.get("status") or {}).get("childReferences") or []:
        if ref.get("kind") != "TaskRun":
            continue
        taskrun = get_or_none(kube, path("TaskRun", ns, str(ref["name"])))
        if taskrun is not None:
            taskrun.setdefault("_pipelineTaskName", ref.get("pipelineTaskName"))
            found.append(taskrun)
    return found


@dataclass(frozen=True)
class RunState:
    done: bool
    failed: str
    reason: str
    message: str
    failing: tuple[str, ...]  # "task T step S: message"


def task_name(taskrun: Obj) -> str:
    labels = (taskrun.get("metadata") or {}).get("labels") or {}
    return str(
        taskrun.get("_pipelineTaskName")
        or labels.get("tekton.dev/pipelineTask")
        or taskrun["metadata"]["name"]
    )


def run_state(run: Obj, taskruns: list[Obj]) -> RunState:
    cond = condition(run, "Succeeded")
    status = str(cond.get("status") or "Unknown")
    reason = str(cond.get("reason") or ("Pending" if not cond else ""))
    message = str(cond.get("message") or "")
    failing = []
    for tr in taskruns:
        tcond = condition(tr, "Succeeded")
        if tcond.get("status") == "False":
            step = failed_step(tr)
            where = f"task {task_name(tr)}" + (f" step {step}" if step else "")
            failing.append(f"{where}: {tcond.get('reason')}: {tcond.get('message', '')}")
    failed = ""
    if status == "False":
        failed = f"{reason}: {message}" + (f"; {'; '.join(failing)}" if failing else "")
    return RunState(status == "True", failed, reason, message, tuple(failing))


def run_lines(run: Obj, taskruns: list[Obj]) -> dict[str, str]:
    name = run["metadata"]["name"]
    cond = condition(run, "Succeeded")
    lines = {
        "run": f"pipelinerun/{name}: {cond.get('reason') or 'Pending'}"
        + (f" ({cond['message']})" if cond.get("message") else "")
    }
    if (run.get("spec") or {}).get("status"):
        lines["spec"] = f"pipelinerun/{name}: spec.status {run['spec']['status']}"
    for tr in taskruns:
        tcond = condition(tr, "Succeeded")
        text = f"task {task_name(tr)} (taskrun/{tr['metadata']['name']}): "
        text += str(tcond.get("reason") or "Pending")
        if tcond.get("status") == "False":
            step = failed_step(tr)
            text += (f" at step {step}" if step else "") + f": {tcond.get('message', '')}"
        lines[f"task:{task_name(tr)}"] = text
    for skipped in (run.get("status") or {}).get("skippedTasks") or []:
        lines[f"task:{skipped['name']}"] = (
            f"task {skipped['name']}: skipped ({skipped.get('reason')})"
        )
    return lines


class RunWatch:
    """The follower's poll() for one PipelineRun and its TaskRuns."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.run: Obj = {}
        self.taskruns: list[Obj] = []

    def snapshot(self) -> Snapshot:
        self.run = self.kube.get(path("PipelineRun", self.namespace, self.name))
        self.taskruns = children(self.kube, self.run)
        state = run_state(self.run, self.taskruns)
        return Snapshot(run_lines(self.run, self.taskruns), done=state.done, failed=state.failed)


def follow_run(
    kube: Kube, namespace: str, name: str, *, timeout_s: float, out: TextIO
) -> tuple[FollowResult, RunWatch]:
    """Follow one PipelineRun and its TaskRuns with the shared follower until it ends."""
    watch = RunWatch(kube, namespace, name)
    return follow(watch.snapshot, timeout_s=timeout_s, out=out), watch


def summary(run: Obj, taskruns: list[Obj]) -> dict[str, Any]:
    state = run_state(run, taskruns)
    cond = condition(run, "Succeeded")
    return {
        "pipelinerun": run["metadata"]["name"],
        "namespace": run["metadata"]["namespace"],
        "status": cond.get("status", "Unknown"),
        "reason": state.reason,
        "message": state.message,
        "tasks": [
            {
                "task": task_name(tr),
                "taskrun": tr["metadata"]["name"],
                "status": condition(tr, "Succeeded").get("status", "Unknown"),
                "reason": condition(tr, "Succeeded").get("reason", ""),
                "failed_step": failed_step(tr)
                if condition(tr, "Succeeded").get("status") == "False"
                else "",
            }
            for tr in taskruns
        ],
        "skipped": [s.get("name") for s in (run.get("status") or {}).get("skippedTasks") or []],
        "failing": list(state.failing),
    }


# --- logs -------------------------------------------------------------------------------------


def _stream_log(kube: Kube, ns: str, pod: str, container: str, deadline: float) -> Iterator[str]:
    """Lines of one container's log, followed until it ends or the deadline passes."""
    api = kube.api
    remaining = max(1.0, deadline - time.monotonic())
    serialized = api.param_serialize(
        method="GET",
        resource_path=f"/api/v1/namespaces/{quote(ns)}/pods/{quote(pod)}/log",
        query_params=[("container", container), ("follow", "true")],
        header_params={"Accept": "*/*"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*serialized, _request_timeout=(5, remaining))
    if response.status != 200:
        raise KubeError(response.status, "", "log not available", f"pods/{pod}/log")
    buffer = b""
    raw = response.response
    try:
        while time.monotonic() < deadline:
            chunk = raw.read1(4096) if hasattr(raw, "read1") else raw.read(4096)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", "replace")
    finally:
        raw.release_conn()
    if buffer:
        yield buffer.decode("utf-8", "replace")


def logs(kube: Kube, run: Obj, taskruns: list[Obj], *, out: TextIO, timeout_s: float) -> int:
    """Print each TaskRun's step logs, `[task step] line`; returns how many steps had a pod."""
    ns = run["metadata"]["namespace"]
    deadline = time.monotonic() + timeout_s
    streamed = 0
    for tr in taskruns:
        status = tr.get("status") or {}
        pod = str(status.get("podName") or "")
        steps = [str(s.get("name")) for s in status.get("steps") or []]
        if (
            not pod
            or get_or_none(kube, f"/api/v1/namespaces/{quote(ns)}/pods/{quote(pod)}") is None
        ):
            where = f"pod {pod} is gone" if pod else "no pod"
            ends = ", ".join(
                f"{s.get('name')}: {(s.get('terminated') or {}).get('reason', 'running')}"
                for s in status.get("steps") or []
            )
            print(f"[{task_name(tr)}] {where}; steps: {ends or '(none yet)'}", file=out)
            continue
        for step in steps:
            streamed += 1
            container = step if step.startswith("step-") else f"step-{step}"
            try:
                for line in _stream_log(kube, ns, pod, container, deadline):
                    print(f"[{task_name(tr)} {step}] {line}", file=out, flush=True)
            except Exception as exc:  # one step's log missing must not hide the others
                print(f"[{task_name(tr)} {step}] (log unavailable: {exc})", file=out)
    return streamed
