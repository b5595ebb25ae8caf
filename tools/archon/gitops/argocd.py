"""ArgoCD through the Kubernetes API, the way `kubectl` drives it: Applications are applied
server-side, a sync is the `operation` field patched onto the Application (argo-cd
docs/user-guide/sync-kubectl.md), and progress is read from the Application's status.

No ArgoCD server or CLI is needed: whatever application-controller watches the cluster (the
real one, or archon.simulation.argocd on the local cluster) does the work.
"""

from __future__ import annotations

import copy
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

import yaml

from archon.errors import CommandFailed, UsageError
from archon.gitops.objects import (
    ControllerApi,
    condition,
    deep_get,
    get_or_none,
    load_documents,
)
from archon.kube.follow import FollowResult, Snapshot, follow
from archon.kube.rest import Kube, Obj
from archon.toolchain import ensure

GROUP_VERSION = "argoproj.io/v1alpha1"
PLURALS = {
    "Application": "applications",
    "AppProject": "appprojects",
    "ApplicationSet": "applicationsets",
}
DEFAULT_NAMESPACE = "argocd"
FINALIZER = "resources-finalizer.argocd.argoproj.io"
SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
INITIATOR = "archon"
CRD_VERSION = "v3.5.7"
KUSTOMIZE_TIMEOUT_S = 60
INSTALL_FIX = (
    "install ArgoCD (kubectl apply -k https://github.com/argoproj/argo-cd/manifests/crds"
    f"?ref={CRD_VERSION}) or run `archon cluster up --gitops`"
)
# Health order of gitops-engine pkg/health (IsWorse): later is worse.
HEALTH_ORDER = ("Healthy", "Suspended", "Progressing", "Missing", "Degraded", "Unknown")
COMPLETED = ("Succeeded", "Failed", "Error")


API = ControllerApi("ArgoCD", GROUP_VERSION, PLURALS, "applications.argoproj.io", INSTALL_FIX)
path = API.path
require_crds = API.require_crds


def checkout_root() -> Path:
    """The checkout holding argocd/ and charts/: the current directory's, else this package's."""
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "argocd" / "application.yaml").is_file() and (folder / "charts").is_dir():
                return folder
    raise UsageError(
        "no checkout with argocd/application.yaml found",
        key="-f",
        fix="run from the Archon checkout, or pass -f APPLICATION.yaml",
    )


def shipped_documents(params: AppParams) -> list[Obj]:
    """argocd/ as `kubectl apply -k argocd/` applies it: built with the pinned kustomize, so the
    values of settings.yaml (repository, revision, destination, profile) are in."""
    folder = checkout_root() / "argocd"
    try:
        proc = subprocess.run(
            [str(ensure("kustomize")), "build", str(folder)],
            capture_output=True,
            text=True,
            timeout=KUSTOMIZE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(f"kustomize build took longer than {KUSTOMIZE_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UsageError(
            f"kustomize build failed: {tail[:200]}",
            source=str(folder / "kustomization.yaml"),
            fix="repair argocd/settings.yaml or kustomization.yaml",
        )
    docs = [d for d in yaml.safe_load_all(proc.stdout) if isinstance(d, dict)]
    return check_manifests([(f"{folder} (kustomize build)", docs)], params)


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set a.b=value` pairs as a nested mapping; the value is read as YAML (2 -> int)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise UsageError(
                f"{item!r} is not KEY=VALUE", key="--set", fix="write --set gpu.count=1"
            )
        try:
            value = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"{key!r} sets below a value", key="--set", fix="fix the key")
        node[leaf] = value
    return tree


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class AppParams:
    """What `archon argocd apply` may change in the shipped Application."""

    name: str = ""
    repo: str = ""
    revision: str = ""
    values: list[str] = field(default_factory=list)  # repository-relative values files
    sets: list[str] = field(default_factory=list)
    dest_namespace: str = ""


def parametrize(doc: Obj, params: AppParams) -> Obj:
    """The Application with the parameters written into its (single) Helm source."""
    if doc.get("kind") != "Application":
        return doc
    app = copy.deepcopy(doc)
    spec = app.setdefault("spec", {})
    source = spec.get("source")
    if not isinstance(source, dict):
        raise UsageError(
            "the Application has no single spec.source to set parameters in",
            key="spec.source",
            fix="edit the Application file instead of passing --repo/--revision/--values",
        )
    if params.name:
        app["metadata"]["name"] = params.name
    if params.repo:
        source["repoURL"] = params.repo
    if params.revision:
        source["targetRevision"] = params.revision
    helm = source.setdefault("helm", {})
    if params.values:
        chart = str(source.get("path") or ".")
        helm["valueFiles"] = [os.path.relpath(v, chart) for v in params.values]
    if params.sets:
        helm["valuesObject"] = _merge(helm.get("valuesObject") or {}, parse_set(params.sets))
    if params.dest_namespace:
        spec.setdefault("destination", {})["namespace"] = params.dest_namespace
    return app


def read_manifests(files: list[Path], params: AppParams) -> list[Obj]:
    return check_manifests([(str(f), load_documents(f)) for f in files], params)


def check_manifests(sources: list[tuple[str, list[Obj]]], params: AppParams) -> list[Obj]:
    """The ArgoCD objects of each source with the parameters set; UsageError before any
    cluster call for anything else."""
    docs: list[Obj] = []
    for source, found in sources:
        for doc in found:
            meta = doc.get("metadata")
            if doc.get("kind") == "ConfigMap" and "config.kubernetes.io/local-config" in (
                (meta or {}).get("annotations") or {}
            ):
                continue  # kustomize's own settings, never applied
            if doc.get("kind") not in PLURALS or not str(doc.get("apiVersion")).startswith(
                "argoproj.io/"
            ):
                raise UsageError(
                    f"{doc.get('kind')} ({doc.get('apiVersion')}) is not an ArgoCD object",
                    source=source,
                    key="kind",
                    fix="pass Application, AppProject or ApplicationSet manifests",
                )
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                raise UsageError(
                    f"a {doc['kind']} without metadata.name",
                    source=source,
                    key="metadata.name",
                    fix="name every object",
                )
            docs.append(parametrize(doc, params))
    if not docs:
        raise UsageError("no ArgoCD objects in the files", key="-f", fix="pass an Application")
    return docs


def require_namespace(kube: Kube, namespace: str) -> None:
    if get_or_none(kube, f"/api/v1/namespaces/{quote(namespace)}") is None:
        raise UsageError(
            f"namespace {namespace!r} not found",
            key="--namespace",
            fix=f"install ArgoCD there, or `kubectl create namespace {namespace}`, or run "
            "`archon cluster up --gitops`",
        )


def apply(kube: Kube, docs: list[Obj], namespace: str, *, dry_run: bool = False) -> list[str]:
    """Server-side apply; returns `kind/namespace/name` for each object."""
    done = []
    for doc in docs:
        meta = doc.setdefault("metadata", {})
        meta["namespace"] = meta.get("namespace") or namespace
        require_namespace(kube, meta["namespace"])
        kube.apply(path(doc["kind"], meta["namespace"], meta["name"]), doc, dry_run=dry_run)
        done.append(f"{doc['kind'].lower()}/{meta['namespace']}/{meta['name']}")
    return done


def get_app(kube: Kube, namespace: str, name: str) -> Obj:
    app = get_or_none(kube, path("Application", namespace, name))
    if app is None:
        known = [a["metadata"]["name"] for a in kube.items(path("Application", namespace))]
        raise UsageError(
            f"application {name!r} not found in namespace {namespace!r}",
            key="APP",
            fix=f"use one of: {', '.join(known)}"
            if known
            else "apply it first: archon argocd apply",
        )
    return app


def sync_body(revision: str = "", prune: bool = False, options: list[str] | None = None) -> Obj:
    """What `argocd app sync` asks for, as the Application's `operation` field."""
    sync: Obj = {"prune": prune, "syncOptions": list(options or [])}
    if revision:
        sync["revision"] = revision
    return {
        "metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}},
        "operation": {"sync": sync, "initiatedBy": {"username": INITIATOR}},
    }


def sync(kube: Kube, namespace: str, name: str, body: Obj) -> Obj:
    app = get_app(kube, namespace, name)
    if app.get("operation"):
        raise UsageError(
            f"application {name!r} already has an operation in progress",
            key="APP",
            fix="wait for it (`archon argocd wait`) or let it finish first",
        )
    return kube.patch(path("Application", namespace, name), body)


def delete(kube: Kube, namespace: str, name: str, *, cascade: bool = True) -> None:
    """Delete the Application; without cascade its finalizer is dropped first, so the
    controller leaves the deployed resources alone (`argocd app delete --cascade=false`)."""
    app = get_app(kube, namespace, name)
    app_path = path("Application", namespace, name)
    finalizers = list(app["metadata"].get("finalizers") or [])
    if cascade and FINALIZER not in finalizers:
        kube.patch(app_path, {"metadata": {"finalizers": [*finalizers, FINALIZER]}})
    if not cascade and FINALIZER in finalizers:
        kept = [f for f in finalizers if f != FINALIZER]
        kube.patch(app_path, {"metadata": {"finalizers": kept or None}})
    kube.delete(app_path)


# --- status -> follower lines and an outcome --------------------------------------------------


def worst(states: list[str]) -> str:
    ranked = [s if s in HEALTH_ORDER else "Unknown" for s in states]
    return max(ranked, key=HEALTH_ORDER.index) if ranked else "Healthy"


def resource_id(res: Obj) -> str:
    ns = res.get("namespace")
    return f"{res.get('kind')}/{ns + '/' if ns else ''}{res.get('name')}"


def failing_resources(app: Obj) -> list[str]:
    """Resources that are out of sync, not healthy, or failed to sync, with their message."""
    status = app.get("status") or {}
    found: list[str] = []
    for res in deep_get(status, "operationState", "syncResult", "resources") or []:
        if res.get("status") in ("SyncFailed", "PruneSkipped") or res.get("hookPhase") in (
            "Failed",
            "Error",
        ):
            found.append(f"{resource_id(res)}: {res.get('status')}: {res.get('message', '')}")
    for res in status.get("resources") or []:
        health = (res.get("health") or {}).get("status")
        if health and health != "Healthy":
            message = (res.get("health") or {}).get("message") or ""
            found.append(f"{resource_id(res)}: {health}" + (f": {message}" if message else ""))
        elif res.get("status") == "OutOfSync":
            found.append(f"{resource_id(res)}: OutOfSync")
    return found


def app_lines(app: Obj) -> dict[str, str]:
    name = app["metadata"]["name"]
    status = app.get("status") or {}
    sync_state = deep_get(status, "sync", "status") or "Unknown"
    revision = str(deep_get(status, "sync", "revision") or "")[:8]
    health = deep_get(status, "health", "status") or "Unknown"
    lines = {
        "app": f"application/{name}: sync {sync_state}"
        + (f" to {revision}" if revision else "")
        + f", health {health}"
    }
    op = status.get("operationState") or {}
    if op:
        message = op.get("message") or ""
        lines["operation"] = f"operation {op.get('phase')}" + (f": {message}" if message else "")
    elif app.get("operation"):
        lines["operation"] = "operation requested, waiting for the application-controller"
    for cond in status.get("conditions") or []:
        lines[f"condition:{cond.get('type')}"] = (
            f"condition {cond.get('type')}: {cond.get('message')}"
        )
    for res in status.get("resources") or []:
        health = (res.get("health") or {}).get("status")
        text = f"{resource_id(res)}: {res.get('status', 'Unknown')}"
        if health:
            message = (res.get("health") or {}).get("message")
            text += f", {health}" + (f" ({message})" if message else "")
        lines[f"res:{resource_id(res)}"] = text
    return lines


@dataclass(frozen=True)
class AppState:
    done: bool
    failed: str
    sync: str
    health: str
    phase: str
    message: str


def app_state(app: Obj, *, want_operation: bool) -> AppState:
    """Done: no operation pending, the last one Succeeded (when one was asked for), Synced and
    Healthy. Failed: the operation Failed/Errored, or health Degraded (what `argocd app wait`
    stops on). Anything else: still going."""
    status = app.get("status") or {}
    sync_state = str(deep_get(status, "sync", "status") or "Unknown")
    health = str(deep_get(status, "health", "status") or "Unknown")
    op = status.get("operationState") or {}
    phase = str(op.get("phase") or "")
    message = str(op.get("message") or "")
    pending = bool(app.get("operation")) or phase in ("Running", "Terminating")
    failed = ""
    if not pending and phase in ("Failed", "Error"):
        failed = f"sync {phase}: {message}"
    elif not pending and health == "Degraded":
        failed = "health Degraded"
    elif not pending and any(
        c.get("type", "").endswith("Error") for c in status.get("conditions") or []
    ):
        errors = [c for c in status["conditions"] if c.get("type", "").endswith("Error")]
        failed = f"{errors[0]['type']}: {errors[0].get('message', '')}"
    ok_op = phase == "Succeeded" if want_operation else True
    done = not failed and not pending and ok_op and sync_state == "Synced" and health == "Healthy"
    return AppState(done, failed, sync_state, health, phase, message)


class AppWatch:
    """The follower's poll() for one Application: its status, plus the destination's pods
    (ArgoCD lists the Deployment, the pods say why it is not available)."""

    def __init__(self, kube: Kube, namespace: str, name: str, *, want_operation: bool) -> None:
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.want_operation = want_operation
        self.app: Obj = {}
        self.pods: dict[str, str] = {}

    def _pod_lines(self) -> dict[str, str]:
        from archon.deploy.progress import pod_lines

        spec = self.app.get("spec") or {}
        dest_ns = deep_get(spec, "destination", "namespace")
        release = deep_get(spec, "source", "helm", "releaseName") or self.name
        if not dest_ns:
            return {}
        pods = self.kube.items(
            f"/api/v1/namespaces/{quote(dest_ns)}/pods",
            labelSelector=f"app.kubernetes.io/instance={release}",
        )
        nodes = {n["metadata"]["name"]: n for n in self.kube.items("/api/v1/nodes")}
        lines: dict[str, str] = {}
        for pod in pods:
            if (pod.get("status") or {}).get("phase") == "Succeeded":
                continue
            lines |= pod_lines(pod, nodes)
        return lines

    def snapshot(self) -> Snapshot:
        self.app = self.kube.get(path("Application", self.namespace, self.name))
        state = app_state(self.app, want_operation=self.want_operation)
        lines = app_lines(self.app)
        self.pods = self._pod_lines()
        lines |= self.pods
        failed = state.failed
        if failed:
            failing = failing_resources(self.app)
            failed += ("; " + "; ".join(failing)) if failing else ""
        return Snapshot(lines=lines, done=state.done, failed=failed)

    def explain(self) -> str:
        """Why it is not done yet: the failing resources and the pods that are not ready."""
        parts = failing_resources(self.app) if self.app else []
        stuck = [
            t
            for k, t in self.pods.items()
            if "not scheduled" in t or (k.endswith(":state") and not t.endswith(": ready"))
        ]
        return "; ".join(parts + stuck)


def follow_app(
    kube: Kube, namespace: str, name: str, *, want_operation: bool, timeout_s: float, out: TextIO
) -> tuple[FollowResult, AppWatch]:
    """Follow one Application with the shared follower until Synced and Healthy, failed or
    timed out; the watch keeps the last Application seen (for the report)."""
    watch = AppWatch(kube, namespace, name, want_operation=want_operation)
    return follow(watch.snapshot, timeout_s=timeout_s, out=out), watch


def summary(app: Obj) -> dict[str, Any]:
    status = app.get("status") or {}
    op = status.get("operationState") or {}
    return {
        "application": app["metadata"]["name"],
        "namespace": app["metadata"]["namespace"],
        "sync": deep_get(status, "sync", "status") or "Unknown",
        "revision": deep_get(status, "sync", "revision") or "",
        "health": deep_get(status, "health", "status") or "Unknown",
        "operation": {"phase": op.get("phase", ""), "message": op.get("message", "")},
        "resources": [
            {
                "kind": r.get("kind"),
                "namespace": r.get("namespace", ""),
                "name": r.get("name"),
                "status": r.get("status"),
                "health": (r.get("health") or {}).get("status", ""),
            }
            for r in status.get("resources") or []
        ],
        "failing": failing_resources(app),
        "conditions": [condition(app, c.get("type", "")) for c in status.get("conditions") or []],
    }
