"""`archon tekton run|status|logs|cancel`: Tekton PipelineRuns driven through the Kubernetes API
(what `tkn pipeline start`, `tkn pipelinerun describe|logs|cancel` do, without tkn)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from archon.cli import _gitops, options

DEFAULT_TIMEOUT_S = 900.0
CANCEL_TIMEOUT_S = 60.0
LOGS_TIMEOUT_S = 60.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "tekton",
        help="run, follow, read and cancel Tekton PipelineRuns through the Kubernetes API",
        description="Exit 0 succeeded, 1 failed, cancelled or timed out (naming the failing task "
        "and step), 2 unusable input (no Tekton CRDs, unknown run or pipeline, bad --param).",
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    verbs.required = True
    what = "PipelineRuns"

    run = verbs.add_parser("run", help="create a PipelineRun and follow it to the end")
    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "-f",
        "--filename",
        type=Path,
        metavar="FILE",
        help="PipelineRun manifest (default: the shipped ci/tekton/pipelinerun.yaml)",
    )
    source.add_argument("--pipeline", default="", help="run this Pipeline (no manifest)")
    run.add_argument(
        "--param",
        "-p",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter (repeatable; arrays comma-separated)",
    )
    run.add_argument(
        "--workspace",
        "-w",
        dest="workspaces",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="NAME=emptyDir | pvc:CLAIM | configmap:NAME | secret:NAME | volumeClaimTemplate:SIZE",
    )
    run.add_argument(
        "--apply",
        type=Path,
        metavar="DIR",
        help="first server-side apply the Tasks, Pipeline and RBAC in DIR (e.g. ci/tekton)",
    )
    run.add_argument("--no-wait", action="store_true", help="create the run and return")
    _gitops.add_common(run, namespace="archon-ci", what=what)
    _gitops.add_wait(run, timeout_s=DEFAULT_TIMEOUT_S, controller="Tekton")
    run.set_defaults(handler=_run)

    status = verbs.add_parser(
        "status",
        help="the run's condition and its tasks, once",
        description="Exit 0 when the run succeeded or is still going (Pending or Running on "
        "the line, like `kubectl get`; in the JSON `ok` true, `done` false), 1 when it failed, "
        "was cancelled or timed out, 2 unusable input (no Tekton CRDs, no such run).",
    )
    status.add_argument("run", metavar="RUN", nargs="?", help="default: the newest run")
    _gitops.add_common(status, namespace="archon-ci", what=what)
    status.set_defaults(handler=_status)

    logs = verbs.add_parser("logs", help="step logs of the run's TaskRun pods")
    logs.add_argument("run", metavar="RUN", nargs="?", help="default: the newest run")
    logs.add_argument(
        "--timeout",
        type=options.positive_number,
        default=LOGS_TIMEOUT_S,
        metavar="SECONDS",
        help=f"stop following the logs after this long (default {LOGS_TIMEOUT_S:.0f})",
    )
    _gitops.add_common(logs, namespace="archon-ci", what=what)
    logs.set_defaults(handler=_logs)

    cancel = verbs.add_parser("cancel", help="spec.status Cancelled, then follow to the end")
    cancel.add_argument("run", metavar="RUN")
    cancel.add_argument(
        "--finally",
        dest="run_finally",
        action="store_true",
        help="CancelledRunFinally: still run the finally tasks",
    )
    _gitops.add_common(cancel, namespace="archon-ci", what=what)
    _gitops.add_wait(cancel, timeout_s=CANCEL_TIMEOUT_S, controller="Tekton")
    cancel.set_defaults(handler=_cancel)


def _connect(args: argparse.Namespace) -> _gitops.Session:
    from archon.gitops.tekton import API

    return _gitops.connect(args, API)


def _simulation(args: argparse.Namespace, session: _gitops.Session) -> Any:
    from archon.gitops.argocd import checkout_root
    from archon.simulation.tekton import TektonSimulation

    return _gitops.simulation(
        args,
        session,
        lambda: TektonSimulation(
            session.kube,
            namespace=args.namespace,
            target=session.target,
            repo_root=checkout_root(),
            out=session.out,
        ),
    )


def _newest(session: _gitops.Session, namespace: str, name: str | None) -> str:
    from archon.errors import UsageError
    from archon.gitops.tekton import path

    if name:
        return name
    runs = session.kube.items(path("PipelineRun", namespace))
    if not runs:
        raise UsageError(
            f"no PipelineRun in namespace {namespace!r}",
            key="RUN",
            fix="start one: archon tekton run",
        )
    runs.sort(key=lambda r: str(r["metadata"].get("creationTimestamp")))
    return str(runs[-1]["metadata"]["name"])


def _follow(
    args: argparse.Namespace,
    session: _gitops.Session,
    name: str,
    verb: str,
    *,
    cancel: bool = False,
) -> int:
    from archon.gitops.tekton import follow_run, summary

    result, watch = follow_run(
        session.kube, args.namespace, name, timeout_s=args.timeout, out=session.out
    )
    report = summary(watch.run, watch.taskruns) | {"elapsed_s": round(result.elapsed_s, 2)}
    if cancel and report["status"] == "False" and report["reason"] == "Cancelled":
        line = f"pipelinerun {name!r} cancelled in {result.elapsed_s:.1f} s"
        return _gitops.finish(session, True, line, report)
    if result.ok:
        line = f"pipelinerun {name!r} Succeeded in {result.elapsed_s:.1f} s"
        return _gitops.finish(session, True, line, report)
    why = result.reason
    if why.startswith("not done after"):
        running = [t["task"] for t in report["tasks"] if t["status"] == "Unknown"]
        why = f"not finished after {args.timeout:.0f} s" + (
            f" (still running: {', '.join(running)})" if running else ""
        )
    report["failure"] = why
    return _gitops.finish(session, False, f"pipelinerun {name!r} {verb}: {why}", report)


def _run(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from archon.gitops.argocd import checkout_root
    from archon.gitops.objects import load_documents
    from archon.gitops.tekton import (
        apply_documents,
        build_run,
        create,
        folder_documents,
        parse_params,
        parse_workspace,
        pipeline_spec,
    )

    params = parse_params(args.params)  # unusable input stops before any cluster call
    workspaces = [parse_workspace(w) for w in args.workspaces]
    template = None
    if not args.pipeline:
        file = args.filename or checkout_root() / "ci" / "tekton" / "pipelinerun.yaml"
        runs = [d for d in load_documents(file) if d.get("kind") == "PipelineRun"]
        if len(runs) != 1:
            from archon.errors import UsageError

            raise UsageError(
                f"expected one PipelineRun, found {len(runs)}", source=str(file), fix="pass one"
            )
        template = runs[0]
    probe = template or {"spec": {"pipelineRef": {"name": args.pipeline}}}
    shipped = folder_documents(args.apply) if args.apply else []
    wanted = (probe.get("spec") or {}).get("pipelineRef", {}).get("name")
    local = [d for d in shipped if d["kind"] == "Pipeline" and d["metadata"]["name"] == wanted]
    if local:  # the parameters are checked against the folder's Pipeline, before any apply
        declared = list((local[0].get("spec") or {}).get("params") or [])
        build_run(
            template,
            pipeline=args.pipeline,
            params=params,
            workspaces=workspaces,
            declared=declared,
            namespace=args.namespace,
        )
    session = _connect(args)
    if shipped:
        ns_path = f"/api/v1/namespaces/{quote(args.namespace)}"
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.namespace}}
        session.kube.apply(ns_path, body)
        for name in apply_documents(session.kube, shipped, args.namespace):
            print(f"{name} applied (server-side)", file=session.out)
    if not local:
        declared = list(pipeline_spec(session.kube, probe, args.namespace).get("params") or [])
    body = build_run(
        template,
        pipeline=args.pipeline,
        params=params,
        workspaces=workspaces,
        declared=declared,
        namespace=args.namespace,
    )
    with _simulation(args, session):
        created = create(session.kube, body)
        name = str(created["metadata"]["name"])
        print(f"pipelinerun/{name} created in namespace {args.namespace!r}", file=session.out)
        if args.no_wait:
            return _gitops.finish(session, True, name, {"pipelinerun": name})
        return _follow(args, session, name, "failed")


def _status(args: argparse.Namespace) -> int:
    from archon.gitops.tekton import children, get_run, run_lines, run_state, summary

    session = _connect(args)
    name = _newest(session, args.namespace, args.run)
    run = get_run(session.kube, args.namespace, name)
    taskruns = children(session.kube, run)
    if not session.json:
        for text in run_lines(run, taskruns).values():
            print(f"  {text}")
    state = run_state(run, taskruns)
    line = f"pipelinerun {name!r}: {state.reason or 'Pending'}" + (
        f": {state.failed}" if state.failed else ""
    )
    report = summary(run, taskruns) | {"done": state.done}
    return _gitops.finish(session, not state.failed, line, report)


def _logs(args: argparse.Namespace) -> int:
    from archon.gitops.tekton import children, get_run, logs

    session = _connect(args)
    name = _newest(session, args.namespace, args.run)
    run = get_run(session.kube, args.namespace, name)
    taskruns = children(session.kube, run)
    streamed = logs(session.kube, run, taskruns, out=session.out, timeout_s=args.timeout)
    return _gitops.finish(
        session, True, f"{streamed} step log(s) streamed", {"pipelinerun": name, "steps": streamed}
    )


def _cancel(args: argparse.Namespace) -> int:
    from archon.gitops.tekton import cancel

    session = _connect(args)
    state = "CancelledRunFinally" if args.run_finally else "Cancelled"
    cancel(session.kube, args.namespace, args.run, state=state)
    print(f"pipelinerun/{args.run}: spec.status {state}", file=session.out)
    with _simulation(args, session):
        # Succeeded=False with reason Cancelled is what was asked for: exit 0.
        return _follow(args, session, args.run, "did not end cancelled", cancel=True)
