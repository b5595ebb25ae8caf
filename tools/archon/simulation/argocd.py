"""ArgoCD SIMULATION: a small stand-in for argo-cd's application-controller, for a cluster that
has the ArgoCD CRDs but no controller (the local cluster; the controller cannot be built here).

What is real: the Application objects and their CRD schema, the chart rendered by the pinned
helm (`helm template`, as ArgoCD's repo-server does), every rendered object server-side applied
to the API server (so the scheduler places the pods on the fake GPU nodes and kwok runs them),
and health read from the live objects with the rules of gitops-engine `pkg/health`.
What is simulated: the controller loop itself. Every `spec.source.repoURL` is read from one
local checkout (`repo_root`), whatever the URL and revision say; the comparison is a server-side
dry-run apply per object (ArgoCD's server-side diff does the same) without ignoreDifferences;
only the in-cluster destination exists; there is no repo-server cache, no RBAC, no
notifications, no self-heal or automated sync, and hooks are only Jobs and Pods.

Status is written in the shapes of argo-cd `pkg/apis/application/v1alpha1` (types.go):
`status.sync.{status,revision,comparedTo}`, `status.health.status`, `status.resources[]`,
`status.operationState.{operation,phase,message,startedAt,finishedAt,syncResult}`.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import yaml

from archon.errors import ArchonError
from archon.gitops.argocd import FINALIZER, SYNC_OPTIONS_ANNOTATION, path, worst
from archon.gitops.objects import (
    annotations_of,
    condition,
    deep_get,
    get_or_none,
    group_version,
    now,
    object_path,
)
from archon.kube.rest import Kube, KubeError, Obj
from archon.simulation.controller import ControllerLoop

BANNER = (
    "ArgoCD SIMULATION (no application-controller here): archon.simulation.argocd renders with "
    "the real helm and applies to the real API server"
)
FIELD_MANAGER = "argocd-controller"
TRACKING = "argocd.argoproj.io/tracking-id"
SYNC_OPTIONS = SYNC_OPTIONS_ANNOTATION
IN_CLUSTER = ("https://kubernetes.default.svc", "in-cluster")
# gitops-engine pkg/sync/sync_tasks.go kindOrder: what is applied first within one wave.
KIND_ORDER = [
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
]
PHASES = ("PreSync", "Sync", "PostSync")
HELM_HOOKS = {
    "pre-install": "PreSync",
    "pre-upgrade": "PreSync",
    "post-install": "PostSync",
    "post-upgrade": "PostSync",
}
HELM_TIMEOUT_S = 60
REFRESH_S = 3.0


# --- health: gitops-engine pkg/health, for the kinds the chart renders ------------------------


def health(obj: Obj | None) -> tuple[str, str] | None:
    """(status, message) as gitops-engine computes it; None for kinds without a health check."""
    if obj is None:
        return "Missing", ""
    kind = obj.get("kind")
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if kind == "Deployment":
        if spec.get("paused"):
            return "Suspended", "Deployment is paused"
        if obj["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
            return "Progressing", (
                "Waiting for rollout to finish: observed deployment generation less than "
                "desired generation"
            )
        if condition(obj, "Progressing").get("reason") == "ProgressDeadlineExceeded":
            return (
                "Degraded",
                f"Deployment {obj['metadata']['name']!r} exceeded its progress deadline",
            )
        replicas = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        if updated < replicas:
            return "Progressing", (
                f"Waiting for rollout to finish: {updated} out of {replicas} new replicas have "
                "been updated..."
            )
        if int(status.get("replicas", 0)) > updated:
            old = int(status.get("replicas", 0)) - updated
            return "Progressing", (
                f"Waiting for rollout to finish: {old} old replicas are pending termination..."
            )
        available = int(status.get("availableReplicas", 0))
        if available < updated:
            return "Progressing", (
                f"Waiting for rollout to finish: {available} of {updated} updated replicas are "
                "available..."
            )
        return "Healthy", ""
    if kind == "PersistentVolumeClaim":
        phase = status.get("phase")
        return {
            "Lost": ("Degraded", ""),
            "Pending": ("Progressing", ""),
            "Bound": ("Healthy", ""),
        }.get(str(phase), ("Unknown", ""))
    if kind == "Service":
        if spec.get("type") == "LoadBalancer" and not deep_get(status, "loadBalancer", "ingress"):
            return "Progressing", ""
        return "Healthy", ""
    if kind == "Ingress":
        return (
            ("Healthy", "") if deep_get(status, "loadBalancer", "ingress") else ("Progressing", "")
        )
    if kind == "Job":
        if condition(obj, "Failed").get("status") == "True":
            return "Degraded", str(condition(obj, "Failed").get("message") or "Job failed")
        if condition(obj, "Complete").get("status") == "True":
            return "Healthy", str(condition(obj, "Complete").get("message") or "")
        if spec.get("suspend"):
            return "Suspended", "job is suspended"
        return "Progressing", ""
    if kind == "Pod":
        phase = status.get("phase")
        if phase == "Succeeded":
            return "Healthy", str(status.get("message") or "")
        if phase == "Failed":
            return "Degraded", str(status.get("message") or "")
        if phase == "Running" and condition(obj, "Ready").get("status") == "True":
            return "Healthy", ""
        return "Progressing", str(condition(obj, "PodScheduled").get("message") or "")
    return None


# --- one sync operation -------------------------------------------------------------------------


@dataclass
class Task:
    obj: Obj
    phase: str  # PreSync, Sync, PostSync
    wave: int
    hook: bool
    applied: bool = False
    result: Obj = field(default_factory=dict)

    @property
    def order(self) -> tuple[int, int, int, str]:
        kind = str(self.obj.get("kind"))
        rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return PHASES.index(self.phase), self.wave, rank, str(self.obj["metadata"]["name"])

    def ident(self) -> str:
        group, _ = group_version(str(self.obj["apiVersion"]))
        return f"{group + '/' if group else ''}{self.obj['kind']}/{self.obj['metadata']['name']}"


@dataclass
class Operation:
    started: str
    revision: str
    tasks: list[Task]
    prune: bool
    sync_options: list[str]
    step: int = 0  # index of the first (phase, wave) group not finished


def _options(app: Obj, requested: list[str]) -> list[str]:
    return [*(deep_get(app, "spec", "syncPolicy", "syncOptions") or []), *requested]


def _tasks(objs: list[Obj]) -> list[Task]:
    """Objects as sync tasks in gitops-engine's order. An ArgoCD hook annotation wins over the
    Helm one on the same object; Helm install/upgrade hooks map to PreSync/PostSync; Helm test
    and delete hooks are not run (ArgoCD does not run `helm test`)."""
    tasks = []
    for obj in objs:
        notes = annotations_of(obj)
        phase, hook = "Sync", False
        if "argocd.argoproj.io/hook" in notes:
            kinds = [h.strip() for h in notes["argocd.argoproj.io/hook"].split(",")]
            if "Skip" in kinds:
                continue
            phase, hook = next((k for k in kinds if k in PHASES), "Sync"), True
        elif "helm.sh/hook" in notes:
            mapped = [
                HELM_HOOKS[h.strip()]
                for h in notes["helm.sh/hook"].split(",")
                if h.strip() in HELM_HOOKS
            ]
            if not mapped:
                continue
            phase, hook = mapped[0], True
        wave = int(
            notes.get("argocd.argoproj.io/sync-wave") or notes.get("helm.sh/hook-weight") or 0
        )
        tasks.append(Task(obj, phase, wave, hook))
    return sorted(tasks, key=lambda t: t.order)


class ArgoSimulation(ControllerLoop):
    """Polls the Applications of one namespace and acts on them in a background thread."""

    banner = BANNER
    thread_name = "argocd-simulation"

    def __init__(
        self,
        kube: Kube,
        *,
        repo_root: Path,
        namespace: str = "argocd",
        interval_s: float = 0.5,
        out: TextIO | None = None,
    ) -> None:
        super().__init__(interval_s=interval_s, out=out)
        self.kube = kube
        self.repo_root = repo_root
        self.namespace = namespace
        self.ops: dict[str, Operation] = {}
        self.rendered: dict[str, tuple[str, list[Obj]]] = {}  # uid -> (spec hash, objects)
        self.errors: list[str] = []
        self._refreshed: dict[str, float] = {}
        self._revision_cache: tuple[float, str] = (0.0, "")
        self._kube_version = ""

    def tick(self) -> None:
        try:
            apps = self.kube.items(path("Application", self.namespace))
        except Exception as exc:  # the API may blink; the next tick retries
            self._note(f"list applications: {exc}")
            return
        for app in apps:
            try:
                self.reconcile(app)
            except Exception as exc:  # one broken Application must not stop the others
                self._note(f"application/{app['metadata']['name']}: {type(exc).__name__}: {exc}")

    def _note(self, text: str) -> None:
        if not self.errors or self.errors[-1] != text:
            self.errors.append(text)
            if self.out is not None:
                print(f"  (ArgoCD simulation: {text})", file=self.out, flush=True)

    # -- reconcile --------------------------------------------------------------------------
    def reconcile(self, app: Obj) -> None:
        uid = str(app["metadata"]["uid"])
        if app["metadata"].get("deletionTimestamp"):
            self._finalize(app)
            return
        problem = self._spec_problem(app)
        if problem:
            self._fail_invalid(app, problem)
            return
        if app.get("operation") and uid not in self.ops:
            self._start(app)
        busy = uid in self.ops
        if busy:
            self._advance(app, self.ops[uid])
        # A real controller refreshes every few minutes or on a change; twice a second while
        # an operation runs (and right after it ended), else every few seconds.
        last = self._refreshed.get(uid, 0.0)
        if busy or time.monotonic() - last >= REFRESH_S or app.get("operation"):
            self._refreshed[uid] = time.monotonic()
            self._refresh(app)

    def _spec_problem(self, app: Obj) -> str:
        spec = app.get("spec") or {}
        project_name = str(spec.get("project") or "default")
        project = get_or_none(self.kube, path("AppProject", self.namespace, project_name))
        if project is None:
            return f"Application referencing project {project_name} which does not exist"
        dest = spec.get("destination") or {}
        server = dest.get("server") or dest.get("name") or ""
        if server not in IN_CLUSTER:
            return f"cluster {server!r} is not known to the simulation (only the in-cluster one)"
        namespace = str(dest.get("namespace") or "")
        allowed = deep_get(project, "spec", "destinations") or []
        if not any(
            fnmatch.fnmatch(namespace, d.get("namespace", ""))
            and (
                d.get("server", "*") == "*"
                or d.get("server") in IN_CLUSTER
                or d.get("name") == "in-cluster"
            )
            for d in allowed
        ):
            return (
                f"application destination server '{server}' and namespace '{namespace}' do not "
                f"match any of the allowed destinations in project '{project_name}'"
            )
        repo = deep_get(spec, "source", "repoURL") or ""
        if not any(
            fnmatch.fnmatch(repo, r) for r in deep_get(project, "spec", "sourceRepos") or []
        ):
            return f"application repo {repo} is not permitted in project '{project_name}'"
        return ""

    def _fail_invalid(self, app: Obj, message: str) -> None:
        status: Obj = {
            "conditions": [
                {"type": "InvalidSpecError", "message": message, "lastTransitionTime": now()}
            ],
            "sync": {"status": "Unknown"},
            "health": {"status": "Unknown"},
        }
        patch: Obj = {"status": status}
        if app.get("operation"):
            status["operationState"] = {
                "operation": app["operation"],
                "phase": "Failed",
                "message": message,
                "startedAt": now(),
                "finishedAt": now(),
            }
            patch["operation"] = None
        self._patch(app, patch)

    def _patch(self, app: Obj, body: Obj) -> None:
        self.kube.patch(path("Application", self.namespace, app["metadata"]["name"]), body)

    # -- render -----------------------------------------------------------------------------
    def _revision(self) -> str:
        at, cached = self._revision_cache
        if cached and time.monotonic() - at < REFRESH_S:
            return cached
        self._revision_cache = (time.monotonic(), self._git_head())
        return self._revision_cache[1]

    def _git_head(self) -> str:
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo_root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return proc.stdout.strip() if proc.returncode == 0 else ""

    def _version(self) -> str:
        if not self._kube_version:
            self._kube_version = str(self.kube.get("/version").get("gitVersion") or "")
        return self._kube_version

    def render(self, app: Obj) -> list[Obj]:
        """`helm template` of the Application's Helm source, from the local checkout."""
        from archon.toolchain import ensure

        source = deep_get(app, "spec", "source") or {}
        helm = source.get("helm") or {}
        chart = (self.repo_root / str(source.get("path") or ".")).resolve()
        if not (chart / "Chart.yaml").is_file():
            raise ArchonError(f"{source.get('path')}: app path does not exist in {self.repo_root}")
        dest_ns = str(deep_get(app, "spec", "destination", "namespace") or "default")
        release = str(helm.get("releaseName") or app["metadata"]["name"])
        args = [str(ensure("helm")), "template", release, str(chart), "--namespace", dest_ns]
        if self._version():
            args += ["--kube-version", self._version()]
        for values_file in helm.get("valueFiles") or []:
            resolved = (chart / str(values_file)).resolve()
            if not resolved.is_file() and not helm.get("ignoreMissingValueFiles"):
                raise ArchonError(f"{values_file}: no such file or directory")
            if resolved.is_file():
                args += ["--values", str(resolved)]
        inline: Obj = yaml.safe_load(str(helm.get("values") or "")) or {}
        inline |= helm.get("valuesObject") or {}
        args += ["--values", "-"]
        for param in helm.get("parameters") or []:
            flag = "--set-string" if param.get("forceString") else "--set"
            args += [flag, f"{param['name']}={param.get('value', '')}"]
        if helm.get("skipTests"):
            args.append("--skip-tests")
        proc = subprocess.run(
            args,
            input=json.dumps(inline),
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            raise ArchonError(f"helm template failed: {last[-1] if last else proc.returncode}")
        objs = [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict) and d.get("kind")]
        for obj in objs:
            meta = obj.setdefault("metadata", {})
            group, _ = group_version(str(obj["apiVersion"]))
            namespaced = obj["kind"] not in (
                "Namespace",
                "ClusterRole",
                "ClusterRoleBinding",
                "StorageClass",
                "PersistentVolume",
                "CustomResourceDefinition",
                "IngressClass",
            )
            if namespaced:
                meta.setdefault("namespace", dest_ns)
            ns = meta.get("namespace", "")
            meta.setdefault("annotations", {})[TRACKING] = (
                f"{app['metadata']['name']}:{group}/{obj['kind']}:{ns}/{meta['name']}"
            )
        return objs

    # -- sync -------------------------------------------------------------------------------
    def _start(self, app: Obj) -> None:
        uid = str(app["metadata"]["uid"])
        sync = deep_get(app, "operation", "sync") or {}
        started = now()
        state: Obj = {
            "operation": app["operation"],
            "phase": "Running",
            "message": "",
            "startedAt": started,
        }
        self._patch(app, {"status": {"operationState": state}})
        try:
            objs = self.render(app)
        except ArchonError as exc:
            self._finish(app, started, "Error", f"ComparisonError: {exc.message}", [])
            return
        self.rendered[uid] = (self._spec_key(app), objs)
        options = _options(app, list(sync.get("syncOptions") or []))
        self.ops[uid] = Operation(
            started, self._revision(), _tasks(objs), bool(sync.get("prune")), options
        )

    def _groups(self, op: Operation) -> list[list[Task]]:
        groups: dict[tuple[int, int], list[Task]] = {}
        for task in op.tasks:
            groups.setdefault(task.order[:2], []).append(task)
        return [groups[k] for k in sorted(groups)]

    def _apply(self, app: Obj, op: Operation, task: Task) -> None:
        obj = copy.deepcopy(task.obj)
        target = object_path(self.kube, obj, str(obj["metadata"].get("namespace") or ""))
        group, version = group_version(str(obj["apiVersion"]))
        result: Obj = {
            "group": group,
            "version": version,
            "kind": obj["kind"],
            "namespace": obj["metadata"].get("namespace", ""),
            "name": obj["metadata"]["name"],
            "syncPhase": task.phase,
        }
        if task.hook:
            policy = annotations_of(obj).get("argocd.argoproj.io/hook-delete-policy", "")
            if "BeforeHookCreation" in policy or not policy:
                self._delete_now(target)
            result |= {"hookType": task.phase, "hookPhase": "Running"}
        try:
            self.kube.apply(target, obj, field_manager=FIELD_MANAGER)
            result |= {
                "status": "Synced",
                "message": f"{obj['kind'].lower()}/{obj['metadata']['name']} serverside-applied",
            }
        except KubeError as exc:
            result |= {"status": "SyncFailed", "message": exc.message}
            if task.hook:
                result["hookPhase"] = "Failed"
        task.applied, task.result = True, result

    def _delete_now(self, target: str) -> None:
        if get_or_none(self.kube, target) is None:
            return
        self.kube.request("DELETE", target, {"propagationPolicy": "Background"})
        deadline = time.monotonic() + 30
        while get_or_none(self.kube, target) is not None and time.monotonic() < deadline:
            time.sleep(0.2)

    def _ensure_namespace(self, app: Obj, op: Operation) -> None:
        dest_ns = str(deep_get(app, "spec", "destination", "namespace") or "")
        if not dest_ns or "CreateNamespace=true" not in op.sync_options:
            return
        ns_path = f"/api/v1/namespaces/{quote(dest_ns)}"
        if get_or_none(self.kube, ns_path) is None:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": dest_ns}}
            self.kube.apply(ns_path, body, field_manager=FIELD_MANAGER)

    def _advance(self, app: Obj, op: Operation) -> None:
        uid = str(app["metadata"]["uid"])
        if op.step == 0 and not any(t.applied for t in op.tasks):
            self._ensure_namespace(app, op)
        groups = self._groups(op)
        while op.step < len(groups):
            group = groups[op.step]
            if not all(t.applied for t in group):
                for task in group:
                    self._apply(app, op, task)
                self._progress(app, op, f"applied wave {group[0].wave} of phase {group[0].phase}")
            failed = [t for t in group if t.result.get("status") == "SyncFailed"]
            if failed:
                self._end(
                    app,
                    op,
                    "Failed",
                    "one or more objects failed to apply, reason: "
                    + failed[0].result.get("message", ""),
                )
                return
            waiting = self._unfinished(group, last=op.step == len(groups) - 1)
            if any(t.hook and t.result.get("hookPhase") == "Failed" for t in group):
                self._end(
                    app, op, "Failed", "one or more synchronization tasks completed unsuccessfully"
                )
                return
            if waiting:
                self._progress(
                    app,
                    op,
                    f"waiting for healthy state of {waiting[0].ident()}"
                    + (f" and {len(waiting) - 1} more" if len(waiting) > 1 else ""),
                )
                return
            op.step += 1
        if op.prune:
            self._prune(app)
        self._end(app, op, "Succeeded", "successfully synced (all tasks run)")
        self.ops.pop(uid, None)

    def _unfinished(self, group: list[Task], *, last: bool) -> list[Task]:
        """Hooks must complete; before the next wave every resource must be healthy (the last
        wave of the Sync phase ends the operation while its resources still progress)."""
        waiting = []
        for task in group:
            if task.result.get("hookPhase") in ("Succeeded", "Failed"):
                continue
            live = get_or_none(self.kube, object_path(self.kube, task.obj, ""))
            state = health(live)
            if task.hook:
                if state is None or state[0] == "Healthy":
                    task.result["hookPhase"] = "Succeeded"
                    task.result["message"] = (
                        state[1] if state and state[1] else task.result.get("message", "")
                    )
                    policy = annotations_of(task.obj).get(
                        "argocd.argoproj.io/hook-delete-policy", ""
                    )
                    if "HookSucceeded" in policy and live is not None:
                        self.kube.request(
                            "DELETE",
                            object_path(self.kube, task.obj, ""),
                            {"propagationPolicy": "Background"},
                        )
                elif state[0] == "Degraded":
                    task.result["hookPhase"] = "Failed"
                    task.result["message"] = state[1]
                else:
                    waiting.append(task)
            elif not last and state is not None and state[0] not in ("Healthy", "Suspended"):
                waiting.append(task)
        return waiting

    def _progress(self, app: Obj, op: Operation, message: str) -> None:
        state = {
            "operation": app.get("operation"),
            "phase": "Running",
            "message": message,
            "startedAt": op.started,
            "syncResult": self._sync_result(app, op),
        }
        self._patch(app, {"status": {"operationState": state}})

    def _sync_result(self, app: Obj, op: Operation) -> Obj:
        return {
            "revision": op.revision,
            "source": deep_get(app, "spec", "source") or {},
            "resources": [t.result for t in op.tasks if t.applied],
        }

    def _end(self, app: Obj, op: Operation, phase: str, message: str) -> None:
        self.ops.pop(str(app["metadata"]["uid"]), None)
        self._finish(
            app,
            op.started,
            phase,
            message,
            [t.result for t in op.tasks if t.applied],
            revision=op.revision,
        )

    def _finish(
        self,
        app: Obj,
        started: str,
        phase: str,
        message: str,
        results: list[Obj],
        *,
        revision: str = "",
    ) -> None:
        state: Obj = {
            "operation": app.get("operation"),
            "phase": phase,
            "message": message,
            "startedAt": started,
            "finishedAt": now(),
            "syncResult": {
                "revision": revision,
                "source": deep_get(app, "spec", "source") or {},
                "resources": results,
            },
        }
        history = list(deep_get(app, "status", "history") or [])
        if phase == "Succeeded":
            history.append(
                {
                    "id": len(history),
                    "revision": revision,
                    "deployStartedAt": started,
                    "deployedAt": now(),
                    "source": deep_get(app, "spec", "source") or {},
                    "initiatedBy": deep_get(app, "operation", "initiatedBy") or {},
                }
            )
        # The controller clears `operation` once the operation completed.
        self._patch(
            app, {"operation": None, "status": {"operationState": state, "history": history[-10:]}}
        )

    def _prune(self, app: Obj) -> None:
        uid = str(app["metadata"]["uid"])
        wanted = {self._key(o) for o in self.rendered.get(uid, ("", []))[1]}
        for res in deep_get(app, "status", "resources") or []:
            key = (res.get("kind"), res.get("namespace", ""), res.get("name"))
            if key in wanted:
                continue
            target, live = self._live(res)
            if live is not None and "Prune=false" not in annotations_of(live).get(SYNC_OPTIONS, ""):
                self.kube.request("DELETE", target, {"propagationPolicy": "Foreground"})

    def _live(self, res: Obj) -> tuple[str, Obj | None]:
        """The URL of an entry of `status.resources[]` and the object there now (None: gone)."""
        api_version = f"{res['group']}/{res['version']}" if res.get("group") else res["version"]
        obj = {
            "apiVersion": api_version,
            "kind": res["kind"],
            "metadata": {"name": res["name"], "namespace": res.get("namespace")},
        }
        target = object_path(self.kube, obj, str(res.get("namespace") or ""))
        return target, get_or_none(self.kube, target)

    # -- status -----------------------------------------------------------------------------
    @staticmethod
    def _key(obj: Obj) -> tuple[Any, Any, Any]:
        meta = obj.get("metadata") or {}
        return obj.get("kind"), meta.get("namespace", ""), meta.get("name")

    @staticmethod
    def _spec_key(app: Obj) -> str:
        return json.dumps(app.get("spec"), sort_keys=True)

    def _compare(self, obj: Obj, live: Obj | None) -> str:
        if live is None:
            return "OutOfSync"
        try:
            dry = self.kube.apply(
                object_path(self.kube, obj, ""),
                copy.deepcopy(obj),
                field_manager=FIELD_MANAGER,
                dry_run=True,
            )
        except KubeError:
            return "OutOfSync"
        for part in ("spec", "data", "metadata.labels", "metadata.annotations"):
            a: Any = dry
            b: Any = live
            for key in part.split("."):
                a, b = (a or {}).get(key), (b or {}).get(key)
            if a != b:
                return "OutOfSync"
        return "Synced"

    def _refresh(self, app: Obj) -> None:
        uid = str(app["metadata"]["uid"])
        key = self._spec_key(app)
        if uid not in self.rendered or self.rendered[uid][0] != key:
            try:
                self.rendered[uid] = (key, self.render(app))
            except ArchonError as exc:
                self._patch(
                    app,
                    {
                        "status": {
                            "conditions": [
                                {
                                    "type": "ComparisonError",
                                    "message": exc.message,
                                    "lastTransitionTime": now(),
                                }
                            ],
                            "sync": {"status": "Unknown"},
                            "health": {"status": "Unknown"},
                        }
                    },
                )
                return
        objs = [t.obj for t in _tasks(self.rendered[uid][1]) if not t.hook]
        resources = []
        states = []
        synced = True
        for obj in objs:
            live = get_or_none(self.kube, object_path(self.kube, obj, ""))
            sync_state = self._compare(obj, live)
            synced = synced and sync_state == "Synced"
            group, version = group_version(str(obj["apiVersion"]))
            entry: Obj = {
                "group": group,
                "version": version,
                "kind": obj["kind"],
                "namespace": obj["metadata"].get("namespace", ""),
                "name": obj["metadata"]["name"],
                "status": sync_state,
            }
            checked = health(live)
            if checked is not None:
                entry["health"] = {"status": checked[0]} | (
                    {"message": checked[1]} if checked[1] else {}
                )
                states.append(checked[0])
            resources.append(entry)
        source = deep_get(app, "spec", "source") or {}
        status: Obj = {
            "resources": resources,
            "sync": {
                "status": "Synced" if synced else "OutOfSync",
                "revision": self._revision(),
                "comparedTo": {
                    "source": source,
                    "destination": deep_get(app, "spec", "destination") or {},
                },
            },
            "health": {
                "status": worst(states) if states else "Healthy",
                "lastTransitionTime": now(),
            },
            "reconciledAt": now(),
            "sourceType": "Helm",
            "conditions": None,
        }
        previous = deep_get(app, "status", "health", "status")
        if previous == status["health"]["status"]:
            status["health"]["lastTransitionTime"] = deep_get(
                app, "status", "health", "lastTransitionTime"
            )
        self._patch(app, {"status": status})

    # -- delete -----------------------------------------------------------------------------
    def _finalize(self, app: Obj) -> None:
        """resources-finalizer: delete what the Application manages, except `Delete=false`
        resources, then drop the finalizer so the API server removes the Application."""
        finalizers = list(app["metadata"].get("finalizers") or [])
        mine = [f for f in finalizers if f.startswith(FINALIZER)]
        if not mine:
            return
        remaining = 0
        for res in deep_get(app, "status", "resources") or []:
            target, live = self._live(res)
            if live is None or "Delete=false" in annotations_of(live).get(SYNC_OPTIONS, ""):
                continue
            remaining += 1
            if not live["metadata"].get("deletionTimestamp"):
                policy = "Background" if mine[0].endswith("/background") else "Foreground"
                self.kube.request("DELETE", target, {"propagationPolicy": policy})
        if remaining:
            return
        kept = [f for f in finalizers if not f.startswith(FINALIZER)]
        self._patch(app, {"metadata": {"finalizers": kept or None}})
        self.ops.pop(str(app["metadata"]["uid"]), None)
