"""`archon argocd apply|sync|status|wait|delete`: ArgoCD Applications driven through the
Kubernetes API (what `argocd app ...` does, without an ArgoCD server or CLI)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from archon.cli import _gitops

DEFAULT_TIMEOUT_S = 300.0
DELETE_TIMEOUT_S = 120.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "argocd",
        help="apply, sync, follow and delete ArgoCD Applications through the Kubernetes API",
        description="Exit 0 synced and healthy, 1 degraded, failed or timed out (naming the "
        "failing resources), 2 unusable input (no ArgoCD CRDs, unknown application).",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True

    apply = verbs.add_parser("apply", help="server-side apply an Application/AppProject/...")
    apply.add_argument(
        "-f",
        "--filename",
        dest="files",
        action="append",
        type=Path,
        metavar="FILE",
        help="manifests to apply (default: the shipped argocd/project.yaml + application.yaml)",
    )
    apply.add_argument("--name", default="", help="rename the Application")
    apply.add_argument("--repo", default="", help="spec.source.repoURL")
    apply.add_argument("--revision", default="", help="spec.source.targetRevision")
    apply.add_argument(
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="values file relative to the repository root, e.g. values/rx7900xtx.yaml",
    )
    apply.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value in spec.source.helm.valuesObject (repeatable)",
    )
    apply.add_argument("--dest-namespace", default="", help="spec.destination.namespace")
    apply.add_argument("--dry-run", action="store_true", help="server-side dry-run only")
    _gitops.add_common(apply, namespace="argocd", what="Applications (ArgoCD's namespace)")
    apply.set_defaults(handler=_apply)

    sync = verbs.add_parser("sync", help="sync (the `operation` field) and follow to Healthy")
    sync.add_argument("app", metavar="APP")
    sync.add_argument("--revision", default="", help="sync to this revision")
    sync.add_argument("--prune", action="store_true", help="delete what is no longer rendered")
    sync.add_argument(
        "--sync-option",
        action="append",
        default=[],
        metavar="OPT",
        help="e.g. ServerSideApply=true (repeatable)",
    )
    sync.add_argument("--no-wait", action="store_true", help="request the sync and return")
    _gitops.add_common(sync, namespace="argocd", what="Applications (ArgoCD's namespace)")
    _gitops.add_wait(sync, timeout_s=DEFAULT_TIMEOUT_S, controller="ArgoCD")
    sync.set_defaults(handler=_sync)

    status = verbs.add_parser(
        "status",
        help="sync, health, operation and resources, once",
        description="Exit 0 when the application is Synced and Healthy or still on its way "
        "(its state on the line, like `kubectl get`; in the JSON `ok` true, `done` false), 1 "
        "when it failed (sync Failed or Error, health Degraded, an error condition), 2 unusable "
        "input.",
    )
    status.add_argument("app", metavar="APP")
    _gitops.add_common(status, namespace="argocd", what="Applications (ArgoCD's namespace)")
    status.set_defaults(handler=_status)

    wait = verbs.add_parser("wait", help="follow until Synced and Healthy")
    wait.add_argument("app", metavar="APP")
    _gitops.add_common(wait, namespace="argocd", what="Applications (ArgoCD's namespace)")
    _gitops.add_wait(wait, timeout_s=DEFAULT_TIMEOUT_S, controller="ArgoCD")
    wait.set_defaults(handler=_wait)

    delete = verbs.add_parser(
        "delete", help="delete the Application (and, cascading, its resources)"
    )
    delete.add_argument("app", metavar="APP")
    delete.add_argument(
        "--cascade",
        choices=["true", "false"],
        default="true",
        help="false: keep everything the Application deployed",
    )
    _gitops.add_common(delete, namespace="argocd", what="Applications (ArgoCD's namespace)")
    _gitops.add_wait(delete, timeout_s=DELETE_TIMEOUT_S, controller="ArgoCD")
    delete.set_defaults(handler=_delete)


def _connect(args: argparse.Namespace) -> _gitops.Session:
    from archon.gitops.argocd import API

    return _gitops.connect(args, API)


def _simulation(args: argparse.Namespace, session: _gitops.Session) -> Any:
    from archon.gitops.argocd import checkout_root
    from archon.simulation.argocd import ArgoSimulation

    return _gitops.simulation(
        args,
        session,
        lambda: ArgoSimulation(
            session.kube, repo_root=checkout_root(), namespace=args.namespace, out=session.out
        ),
    )


def _apply(args: argparse.Namespace) -> int:
    from archon.gitops.argocd import AppParams, apply, read_manifests, shipped_documents

    params = AppParams(
        name=args.name,
        repo=args.repo,
        revision=args.revision,
        values=args.values,
        sets=args.sets,
        dest_namespace=args.dest_namespace,
    )
    # before any cluster call
    docs = read_manifests(args.files, params) if args.files else shipped_documents(params)
    session = _connect(args)
    if args.dry_run:
        names = apply(session.kube, docs, args.namespace, dry_run=True)
        return _gitops.finish(
            session,
            True,
            f"server-side dry-run admitted {', '.join(names)}; nothing applied",
            {"applied": [], "dry_run": names},
        )
    applied = apply(session.kube, docs, args.namespace)
    for name in applied:
        print(f"{name} applied (server-side)", file=session.out)
    return _gitops.finish(session, True, f"{len(applied)} object(s) applied", {"applied": applied})


def _follow(args: argparse.Namespace, session: _gitops.Session, *, want_operation: bool) -> int:
    from archon.gitops.argocd import follow_app, summary

    result, watch = follow_app(
        session.kube,
        args.namespace,
        args.app,
        want_operation=want_operation,
        timeout_s=args.timeout,
        out=session.out,
    )
    report = summary(watch.app) | {"elapsed_s": round(result.elapsed_s, 2)}
    name = f"application {args.app!r}"
    if result.ok:
        line = f"{name} Synced and Healthy in {result.elapsed_s:.1f} s"
        return _gitops.finish(session, True, line, report)
    why = result.reason
    if why.startswith("not done after"):
        detail = watch.explain()
        why = (
            f"not Synced and Healthy after {args.timeout:.0f} s "
            f"(sync {report['sync']}, health {report['health']})"
            + (f": {detail}" if detail else "")
        )
    report["failure"] = why
    return _gitops.finish(session, False, f"{name} {why}", report)


def _sync(args: argparse.Namespace) -> int:
    from archon.gitops.argocd import sync, sync_body

    session = _connect(args)
    body = sync_body(args.revision, args.prune, args.sync_option)
    with _simulation(args, session):
        sync(session.kube, args.namespace, args.app, body)
        print(f"sync requested for application {args.app!r} (operation patched)", file=session.out)
        if args.no_wait:
            return _gitops.finish(session, True, "sync requested", {"application": args.app})
        return _follow(args, session, want_operation=True)


def _wait(args: argparse.Namespace) -> int:
    from archon.gitops.argocd import get_app

    session = _connect(args)
    get_app(session.kube, args.namespace, args.app)
    with _simulation(args, session):
        return _follow(args, session, want_operation=False)


def _status(args: argparse.Namespace) -> int:
    from archon.gitops.argocd import app_lines, app_state, get_app, summary

    session = _connect(args)
    app = get_app(session.kube, args.namespace, args.app)
    report = summary(app)
    if not session.json:
        for text in app_lines(app).values():
            print(f"  {text}")
    state = app_state(app, want_operation=False)
    line = f"application {args.app!r}: sync {state.sync}, health {state.health}"
    if state.phase:
        line += f", operation {state.phase}"
    if state.failed:
        line += f" ({state.failed})"
    if not state.done and report["failing"]:
        line += ": " + "; ".join(report["failing"])
    return _gitops.finish(session, not state.failed, line, report | {"done": state.done})


def _delete(args: argparse.Namespace) -> int:
    from archon.gitops.argocd import SYNC_OPTIONS_ANNOTATION, delete, get_app, path
    from archon.gitops.objects import annotations_of, get_or_none, object_path
    from archon.kube.follow import Snapshot, follow

    session = _connect(args)
    app = get_app(session.kube, args.namespace, args.app)
    kept: list[tuple[str, str]] = []  # resources marked Delete=false: (id, URL)
    for res in (app.get("status") or {}).get("resources") or []:
        api_version = f"{res['group']}/{res['version']}" if res.get("group") else res["version"]
        obj = {"apiVersion": api_version, "kind": res["kind"], "metadata": {"name": res["name"]}}
        url = object_path(session.kube, obj, str(res.get("namespace") or ""))
        live = get_or_none(session.kube, url)
        if live and "Delete=false" in annotations_of(live).get(SYNC_OPTIONS_ANNOTATION, ""):
            kept.append((f"{res['kind']}/{res['name']}", url))
    app_url = path("Application", args.namespace, args.app)

    def poll() -> Snapshot:
        current = get_or_none(session.kube, app_url)
        if current is None:
            return Snapshot({"app": f"application/{args.app}: deleted"}, done=True)
        finalizers = current["metadata"].get("finalizers") or []
        return Snapshot({"app": f"application/{args.app}: deleting, finalizers {finalizers}"})

    start = time.perf_counter()
    with _simulation(args, session):
        delete(session.kube, args.namespace, args.app, cascade=args.cascade == "true")
        result = follow(poll, timeout_s=args.timeout, out=session.out)
    survived = [name for name, url in kept if get_or_none(session.kube, url) is not None]
    report = {
        "application": args.app,
        "deleted": result.ok,
        "kept": survived,
        "elapsed_s": round(time.perf_counter() - start, 2),
    }
    if not result.ok:
        line = (
            f"application {args.app!r} still exists after {args.timeout:.0f} s: its finalizer "
            "waits for the application-controller (is ArgoCD running?)"
        )
        return _gitops.finish(session, False, line, report)
    line = f"application {args.app!r} deleted"
    if survived:
        line += f"; kept (sync-options Delete=false): {', '.join(survived)}"
    return _gitops.finish(session, True, line, report)
