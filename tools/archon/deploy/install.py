"""`archon deploy`: lint and preflight, then helm upgrade --install with --wait and rollback on
failure, following the rollout; on success print the endpoint and the chart's NOTES.

Nothing reaches the cluster before lint and preflight pass: both run on the files alone.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from archon.errors import ArchonError, CommandFailed, Problem, ProblemsFound, UsageError
from archon.helm import helm_error_line
from archon.helm_client import error_text, helm_command
from archon.kube.client import api_client, wait_for_api
from archon.kube.follow import FollowResult, follow
from archon.kube.rest import Kube
from archon.optional import feature
from archon.paths import chart_dir

DEFAULT_NAMESPACE = "archon-system"
DEFAULT_RELEASE = "archon"
# A first start on real hardware downloads the model; on the local cluster it takes seconds.
# Helm's --timeout bounds each wait; the follower gets a little longer to see the rollback.
DEFAULT_TIMEOUT_S = 600


@dataclass
class DeployOptions:
    values_files: list[Path]
    namespace: str = DEFAULT_NAMESPACE
    release: str = DEFAULT_RELEASE
    kubeconfig: Path | None = None
    dry_run: bool = False
    timeout_s: int = DEFAULT_TIMEOUT_S


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
    lines: list[str] = field(default_factory=list)


def resolve_kubeconfig(kubeconfig: Path | None) -> Path:
    if kubeconfig is not None:
        # Refuse a missing, empty or broken file here (exit 2): helm would fall back to
        # localhost:8080 and act on whatever answers there.
        from archon.kube.client import api_client

        api_client(kubeconfig)
        return kubeconfig
    from archon.cluster.lifecycle import kubeconfig_path

    local = kubeconfig_path()
    if not local.is_file():
        raise UsageError(
            "no kubeconfig given and the local cluster is not running",
            key="--kubeconfig",
            fix="run `archon cluster up`, or pass --kubeconfig PATH",
        )
    return local


def check_inputs(files: list[Path]) -> str:
    """Lint (schema + preflight FAIL) every file, then preflight the merged values.

    Returns the preflight verdict line ("" when the preflight is not installed or no GPU profile
    is named); raises ProblemsFound on any problem, before anything touches a cluster.
    """
    from archon.lint import lint_files
    from archon.values import load_values

    if not files:
        raise UsageError("no values file", key="-f", fix="pass -f values.yaml")
    # Layered files (-f base -f override) are only meaningful together: each file is checked
    # against the schema on its own, the memory preflight runs once on the merged values below.
    problems = lint_files(files, preflight=False)
    if problems:
        raise ProblemsFound(problems, "lint found problems; nothing was applied")
    values = load_values(list[str | Path](files))
    check_values = feature("archon.preflight", "check_values")
    if check_values is None or not (values.get("gpu") or {}).get("profile"):
        return ""
    source = ", ".join(str(f) for f in files)
    report = check_values(values, source=source)
    if report.verdict == "FAIL":
        found = [
            Problem(p.key, p.message, p.fix, value=p.value, source=source) for p in report.failures
        ]
        raise ProblemsFound(found, "preflight FAIL; nothing was applied")
    gpu = (values.get("gpu") or {}).get("profile")
    return f"preflight {report.verdict} on {gpu}"


def _overrides(files: list[Path]) -> dict[str, Any]:
    from archon.render import user_overrides

    return user_overrides(files)


def deploy(opts: DeployOptions, *, out: TextIO) -> DeployResult:
    start = time.perf_counter()
    result = DeployResult(opts.release, opts.namespace)
    result.preflight = check_inputs(opts.values_files)
    if result.preflight:
        print(result.preflight, file=out, flush=True)
    kubeconfig = resolve_kubeconfig(opts.kubeconfig)
    api = api_client(kubeconfig)
    wait_for_api(api, timeout_s=15)
    kube = Kube(api)
    helm = helm_command(kubeconfig, timeout=f"{opts.timeout_s}s")
    values = _overrides(opts.values_files)
    if opts.dry_run:
        return _dry_run(helm, opts, values, result, start, out)

    from archon.deploy.progress import ReleaseWatch

    watch = ReleaseWatch(kube, opts.namespace, opts.release)
    print(
        f"installing release {opts.release!r} in namespace {opts.namespace!r} "
        f"(helm upgrade --install --wait --rollback-on-failure, timeout {opts.timeout_s} s)",
        file=out,
        flush=True,
    )
    outcome: dict[str, Any] = {}

    def run_helm() -> None:
        try:
            outcome["release"] = asyncio.run(
                helm.install_or_upgrade(
                    opts.release,
                    str(chart_dir()),
                    values,
                    atomic=True,
                    wait=True,
                    namespace=opts.namespace,
                    create_namespace=True,
                    timeout=f"{opts.timeout_s}s",
                )
            )
        except Exception as exc:  # reported below, on the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=run_helm, name="archon-helm", daemon=True)
    worker.start()
    # A failed --wait is followed by the rollback, which waits again with the same timeout.
    helm_budget_s = 2 * opts.timeout_s + 60
    # helm decides the end (its --wait, or the rollback): the old revision's pods are Ready
    # before the new ones exist, so "all pods ready" must not end the follow here.
    result.follow = follow(
        lambda: replace(watch.snapshot(), done=False),
        timeout_s=helm_budget_s,
        stop=lambda: not worker.is_alive(),
        out=out,
    )
    worker.join(timeout=helm_budget_s + 60)
    result.elapsed_s = time.perf_counter() - start
    if "error" in outcome:
        raise _deploy_error(outcome["error"], watch, opts, result.follow)
    if "release" not in outcome:
        raise CommandFailed(
            f"helm did not finish within {helm_budget_s + 60} s",
            fix="run `archon status` to see where the rollout stopped",
        )
    release = outcome["release"]
    result.revision = int(release.get("version", 0))
    result.status = str((release.get("info") or {}).get("status", ""))
    result.notes = str((release.get("info") or {}).get("notes", "")).strip()
    result.endpoint = endpoint(kube, opts.namespace, opts.release)
    return result


def _dry_run(
    helm: Any,
    opts: DeployOptions,
    values: dict[str, Any],
    result: DeployResult,
    start: float,
    out: TextIO,
) -> DeployResult:
    try:
        release = asyncio.run(
            helm.install_or_upgrade(
                opts.release,
                str(chart_dir()),
                values,
                dry_run=True,
                namespace=opts.namespace,
                # A server-side dry-run of a release into a missing namespace fails admission;
                # create_namespace would create it for real, so it is off here.
                create_namespace=False,
                timeout=f"{opts.timeout_s}s",
            )
        )
    except Exception as exc:
        raise CommandFailed(
            f"server-side dry-run refused: {helm_error_line(error_text(exc))}",
            fix="change the values named above; nothing was applied",
        ) from exc
    manifest = str(release.get("manifest", ""))
    result.objects = sum(1 for doc in manifest.split("\n---") if "kind:" in doc)
    result.status = "dry-run"
    result.elapsed_s = time.perf_counter() - start
    print(
        f"server-side dry-run: {result.objects} objects admitted by the API server "
        f"(namespace {opts.namespace!r}); nothing was applied",
        file=out,
    )
    return result


def _deploy_error(
    exc: BaseException, watch: Any, opts: DeployOptions, followed: FollowResult | None
) -> ArchonError:
    if isinstance(exc, ArchonError):
        return exc
    stderr = error_text(exc) if hasattr(exc, "stderr") else str(exc)
    helm_line = helm_error_line(stderr)
    # After a rollback the unschedulable pod is gone: take the scheduler's words from what the
    # follower saw, else ask now.
    seen = [ln for ln in (followed.printed if followed else ()) if ": not scheduled: " in ln]
    reason = seen[-1].split(": not scheduled: ", 1)[1] if seen else ""
    if not reason:
        try:
            reason = watch.unschedulable_reason()
        except Exception:  # the reason is a bonus; the helm message stands on its own
            reason = ""
    rolled_back = "rolled back" in stderr or "rollback" in stderr.lower()
    what = "rolled back to the previous revision" if rolled_back else "failed"
    because = f"pod unschedulable: {reason}" if reason else helm_line
    return CommandFailed(
        f"release {opts.release!r} {what}: {because}",
        fix="fix the values (GPU count, node selector, resources) and run `archon deploy` again",
    )


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
            "release": result.release,
            "namespace": result.namespace,
            "revision": result.revision,
            "status": result.status,
            "endpoint": result.endpoint,
            "elapsed_s": round(result.elapsed_s, 2),
        }
    )
