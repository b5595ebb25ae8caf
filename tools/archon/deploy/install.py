"""`archon deploy`: lint and preflight, then helm upgrade --install with --wait and rollback on
failure, following the rollout; on success print the endpoint and the chart's NOTES.

Nothing reaches the cluster before lint and preflight pass: both run on the files alone. The
values files are read once; the same ValuesSet feeds lint, the preflight and helm's stdin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from urllib3.exceptions import HTTPError

from archon.deploy.progress import WAITING_FOR_SCHEDULER, ReleaseWatch
from archon.errors import ArchonError, CommandFailed, Problem, ProblemsFound, UsageError
from archon.helm import (
    DEFAULT_NAMESPACE,
    DEFAULT_RELEASE,
    Helm,
    HelmError,
    OperationInProgress,
    Release,
    ReleaseNotFound,
    RenderFailed,
    ResourceRejected,
    UpgradeFailed,
    interrupt_running,
)
from archon.kube.client import reach_api
from archon.kube.config import ClusterTarget, resolve_target
from archon.kube.follow import FollowResult, follow
from archon.kube.rest import Kube, KubeError
from archon.lint import lint_values
from archon.preflight import check_values
from archon.values import ValuesSet

# A first start on real hardware downloads the model; on the local cluster it takes seconds.
# Helm's --timeout bounds each wait; the follower gets a little longer to see the rollback.
DEFAULT_TIMEOUT_S = 600
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


@dataclass
class DeployOptions:
    values_files: list[Path]
    namespace: str = DEFAULT_NAMESPACE
    release: str = DEFAULT_RELEASE
    target: ClusterTarget | None = None  # None: kubectl's choice ($KUBECONFIG, ~/.kube/config)
    dry_run: bool = False
    timeout_s: int = DEFAULT_TIMEOUT_S
    recover: bool = False  # end a pending operation left by an interrupted deploy first


@dataclass
class DeployResult:
    release: str
    namespace: str
    revision: int = 0
    status: str = ""
    notes: str = ""
    endpoint: str = ""
    objects: int = 0
    elapsed_s: float = 0.0
    follow: FollowResult | None = None
    preflight: str = ""
    cluster: dict[str, Any] = field(default_factory=dict)


def check_inputs(values: ValuesSet | Sequence[Path]) -> str:
    """Lint (schema + archetype rules) every file, then preflight the merged values.

    Returns the preflight verdict line ("" when no GPU profile is named); raises ProblemsFound
    on any problem, before anything touches a cluster.
    """
    if not isinstance(values, ValuesSet):
        values = ValuesSet.read(values)
    if not values.files:
        raise UsageError("no values file", key="-f", fix="pass -f values.yaml")
    # Layered files (-f base -f override) are only meaningful together: each file is checked
    # against the schema on its own, the memory preflight runs once on the merged values below.
    problems = lint_values(values, preflight=False)
    if problems:
        raise ProblemsFound(problems, "lint found problems; nothing was applied")
    gpu = (values.merged.get("gpu") or {}).get("profile")
    if not gpu:
        return ""
    report = check_values(values.merged, source=values.source)
    if report.verdict == "FAIL":
        found = [
            Problem(p.key, p.message, p.fix, value=p.value, source=values.source)
            for p in report.failures
        ]
        raise ProblemsFound(found, "preflight FAIL; nothing was applied")
    return f"preflight {report.verdict} on {gpu}"


def deploy(opts: DeployOptions, *, out: TextIO) -> DeployResult:
    start = time.perf_counter()
    result = DeployResult(opts.release, opts.namespace)
    values = ValuesSet.read(opts.values_files)
    result.preflight = check_inputs(values)
    if result.preflight:
        print(result.preflight, file=out, flush=True)
    target = opts.target or resolve_target()
    print(target.describe(), file=out, flush=True)
    result.cluster = target.as_dict()
    api = reach_api(target, timeout_s=15)
    kube = Kube(api)
    helm = Helm(target)
    if opts.dry_run:
        return _dry_run(helm, opts, values, result, start, out)

    _settle_pending(helm, opts, out)
    watch = ReleaseWatch(kube, opts.namespace, opts.release)
    print(
        f"installing release {opts.release!r} in namespace {opts.namespace!r} "
        f"(helm upgrade --install --wait --rollback-on-failure, timeout {opts.timeout_s} s)",
        file=out,
        flush=True,
    )
    # helm runs in a worker thread while the follower polls; future.result() raises whatever
    # the worker raised, unchanged: only helm's own failures are reworded below.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="archon-helm") as pool:
        future = pool.submit(
            helm.upgrade_install,
            opts.release,
            values.chart,
            values.overrides,
            namespace=opts.namespace,
            timeout_s=opts.timeout_s,
        )
        # A failed --wait is followed by the rollback, which waits again with the same timeout.
        helm_budget_s = 2 * opts.timeout_s + 60
        try:
            # helm decides the end (its --wait, or the rollback): the old revision's pods are
            # Ready before the new ones exist, so "all pods ready" must not end the follow here.
            result.follow = follow(
                lambda: replace(watch.snapshot(), done=False),
                timeout_s=helm_budget_s,
                stop=future.done,
                out=out,
            )
        except KeyboardInterrupt:
            raise _interrupted(helm, future, opts, out) from None
        try:
            # helm's process bound (upgrade_install) ends it within the follower's budget
            release = future.result(timeout=60)
        except UpgradeFailed as exc:
            raise _left_pending(helm, opts, _deploy_error(exc, watch, opts, result.follow)) from exc
        except HelmError as exc:  # the cluster went away mid-deploy, helm's own timeout, ...
            raise _left_pending(helm, opts, exc) from exc
        except TimeoutError as exc:
            raise CommandFailed(
                f"helm did not finish within {helm_budget_s + 60} s",
                fix="run `archon status` to see where the rollout stopped",
            ) from exc
        finally:
            result.elapsed_s = time.perf_counter() - start
    result.revision = release.revision
    result.status = release.status
    result.notes = release.notes
    result.endpoint = endpoint(kube, opts.namespace, opts.release)
    return result


class Interrupted(ArchonError):
    """The user stopped a deploy; helm was told to stop too and the release state is known."""

    exit_code = EXIT_INTERRUPTED


def _interrupted(
    helm: Helm, future: Future[Release], opts: DeployOptions, out: TextIO
) -> Interrupted:
    """Pass the interrupt on to helm (a signal to Archon's own pid does not reach it), wait for
    helm to cancel and roll back, and say where that left the release."""
    signalled = interrupt_running()
    budget = 2 * opts.timeout_s + 60
    if signalled:
        print(
            f"interrupted: helm was told to stop and rolls back a failed change; waiting for it "
            f"(up to {budget} s, Ctrl-C again to leave it running)",
            file=out,
            flush=True,
        )
    try:
        future.result(timeout=budget)
    except KeyboardInterrupt:
        return Interrupted(
            "interrupted again: helm is still running on its own",
            fix="run `archon status`; if the release stays pending, `archon deploy --recover`",
        )
    except (ArchonError, TimeoutError):  # helm failing is the expected end; the history says how
        pass
    try:
        revisions = helm.history(opts.release, opts.namespace)
    except ReleaseNotFound:
        return Interrupted(
            f"interrupted: release {opts.release!r} was not installed (the first install was "
            "removed again)",
            fix="run `archon deploy` again when ready",
        )
    except ArchonError as exc:
        return Interrupted(
            f"interrupted: the release state is unknown ({exc.message})",
            fix="run `archon status`",
        )
    last = revisions[-1] if revisions else None
    if last is None or last.status.startswith("pending-"):
        return Interrupted(
            f"interrupted: release {opts.release!r} is left {last.status if last else 'unknown'}",
            fix="run `archon deploy --recover -f ...` to end the interrupted operation",
        )
    return Interrupted(
        f"interrupted: release {opts.release!r} is at revision {last.revision}, {last.status} "
        f"({last.description or 'no description'})",
        fix="nothing to recover; run `archon deploy` again when ready",
    )


def _left_pending(helm: Helm, opts: DeployOptions, exc: HelmError) -> HelmError:
    """A failed helm that left the release pending (it could not roll back, for example the API
    server went away) says so, with the way out; otherwise `exc` stands as it is."""
    try:
        pending = helm.pending(opts.release, opts.namespace)
    except ArchonError:  # the cluster does not answer: the state is unknown until it does
        exc.fix = (
            f"{exc.fix}; then, if `archon status` shows the release pending, "
            "`archon deploy --recover -f ...` ends that operation"
        )
        return exc
    if pending is None:
        return exc
    exc.message = f"{exc.message}; the release is left {pending.revision.status}"
    exc.fix = (
        f"once the cluster answers, `archon deploy --recover -f ...` will {pending.recovery()}"
    )
    return exc


def _settle_pending(helm: Helm, opts: DeployOptions, out: TextIO) -> None:
    """A release left pending refuses every change; say so in one line, or end it (--recover):
    roll back to the last deployed revision, or uninstall a release never deployed (the
    model-cache claim stays, `helm.sh/resource-policy: keep`)."""
    pending = helm.pending(opts.release, opts.namespace)
    if pending is None:
        return
    what = f"{pending.revision.status} at revision {pending.revision.revision}"
    if not opts.recover:
        raise OperationInProgress(
            f"release {opts.release!r}: another operation is in progress ({what})",
            fix="wait for it to finish; if no deploy is running (one was interrupted), "
            f"`archon deploy --recover` will {pending.recovery()}",
        )
    print(f"recovering release {opts.release!r} ({what}): {pending.recovery()}", file=out)
    if pending.rollback_to is None:
        helm.uninstall(opts.release, opts.namespace, timeout_s=opts.timeout_s)
    else:
        helm.rollback(opts.release, opts.namespace, pending.rollback_to, timeout_s=opts.timeout_s)


def _dry_run(
    helm: Helm,
    opts: DeployOptions,
    values: ValuesSet,
    result: DeployResult,
    start: float,
    out: TextIO,
) -> DeployResult:
    try:
        release = helm.upgrade_install(
            opts.release,
            values.chart,
            values.overrides,
            namespace=opts.namespace,
            timeout_s=opts.timeout_s,
            dry_run=True,
            wait=False,
            rollback_on_failure=False,
            # A server-side dry-run of a release into a missing namespace fails admission;
            # create_namespace would create it for real, so it is off here.
            create_namespace=False,
        )
    except (RenderFailed, ResourceRejected, UpgradeFailed) as exc:
        raise CommandFailed(
            f"server-side dry-run refused: {exc.message}",
            fix="change the values named above; nothing was applied",
        ) from exc
    result.objects = sum(1 for doc in release.manifest.split("\n---") if "kind:" in doc)
    result.status = "dry-run"
    result.elapsed_s = time.perf_counter() - start
    print(
        f"server-side dry-run: {result.objects} objects admitted by the API server "
        f"(namespace {opts.namespace!r}); nothing was applied",
        file=out,
    )
    return result


def _deploy_error(
    exc: UpgradeFailed, watch: ReleaseWatch, opts: DeployOptions, followed: FollowResult | None
) -> UpgradeFailed:
    """The failed rollout in one line: what helm's rollback did (from the release history) and
    why, in the scheduler's words when a pod could not be placed."""
    # After a rollback the unschedulable pod is gone: take the scheduler's words from what the
    # follower saw, else ask now.
    seen = [
        ln.split(": not scheduled: ", 1)[1]
        for ln in (followed.printed if followed else ())
        if ": not scheduled: " in ln
    ]
    reasons = [why for why in seen if why != WAITING_FOR_SCHEDULER]
    reason = reasons[-1] if reasons else ""
    if not reason:
        try:
            reason = watch.unschedulable_reason()
        except (KubeError, HTTPError, OSError):  # the reason is a bonus; helm's message stands
            reason = ""
    if exc.rolled_back:
        what = "rolled back to the previous revision"
    elif exc.removed:
        what = "failed; the first install was removed again"
    else:
        what = "failed"
    because = f"pod unschedulable: {reason}" if reason else exc.message
    fix = (
        "fix the values (GPU count, node selector, resources) and run `archon deploy` again"
        if reason
        else "run `archon status` to see the release and its pods, then `archon deploy` again"
    )
    error = UpgradeFailed(
        f"release {opts.release!r} {what}: {because}",
        verb=exc.verb,
        stderr=exc.stderr,
        fix=fix,
    )
    error.rolled_back, error.removed = exc.rolled_back, exc.removed
    return error


def endpoint(kube: Kube, namespace: str, release: str) -> str:
    """The in-cluster URL of the server Service, from the Service itself."""
    services = kube.items(
        f"/api/v1/namespaces/{namespace}/services",
        labelSelector=f"app.kubernetes.io/instance={release}",
    )
    for service in services:
        ports = (service.get("spec") or {}).get("ports") or []
        if ports:
            name = service["metadata"]["name"]
            return f"http://{name}.{namespace}.svc:{ports[0].get('port')}/v1"
    return ""


def summary_json(result: DeployResult) -> str:
    return json.dumps(
        {
            "cluster": result.cluster,
            "release": result.release,
            "namespace": result.namespace,
            "revision": result.revision,
            "status": result.status,
            "endpoint": result.endpoint,
            "elapsed_s": round(result.elapsed_s, 2),
        }
    )
