"""`archon status`: the release (helm), its pods with their node and GPU, and its claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TextIO

from archon.deploy.install import endpoint
from archon.deploy.progress import ReleaseWatch, placement, pod_ready, pvc_line
from archon.helm import Helm, ReleaseNotFound
from archon.kube.client import reach_api
from archon.kube.config import ClusterTarget
from archon.kube.rest import Kube


@dataclass
class ReleaseStatus:
    release: str
    namespace: str
    revision: int = 0
    status: str = ""
    chart: str = ""
    endpoint: str = ""
    pods: list[str] = field(default_factory=list)
    pvcs: list[str] = field(default_factory=list)
    ready: bool = False
    recovery: str = ""  # how to end an operation left pending, when one is


def release_status(target: ClusterTarget, namespace: str, release: str) -> ReleaseStatus:
    api = reach_api(target, timeout_s=10)
    helm = Helm(target)
    try:
        info = helm.status(release, namespace)
    except ReleaseNotFound as exc:
        fix = "deploy it with `archon deploy -f values.yaml`"
        raise not_found(exc, release, namespace, fix) from exc
    report = ReleaseStatus(release, namespace, revision=info.revision, status=info.status)
    pending = helm.pending(release, namespace) if info.status.startswith("pending-") else None
    if pending is not None:
        report.recovery = (
            f"{pending.revision.status}: an operation is running, or one was interrupted; if no "
            f"deploy is running, `archon deploy --recover -f ...` will {pending.recovery()}"
        )
    # helm v4's `status -o json` has no chart field; `list` has "chart": "<name>-<version>".
    listed = helm.releases(namespace, name=release)
    report.chart = str(listed[0].get("chart", "?")) if listed else "?"
    kube = Kube(api)
    watch = ReleaseWatch(kube, namespace, release)
    nodes = watch.nodes()
    pods = watch.pods()
    for pod in pods:
        state = "Ready" if pod_ready(pod) else (pod.get("status") or {}).get("phase", "?")
        report.pods.append(f"{pod['metadata']['name']} {state} on {placement(pod, nodes)}")
    report.pvcs = [pvc_line(p)[1] for p in watch.pvcs()]
    report.endpoint = endpoint(kube, namespace, release)
    report.ready = bool(pods) and all(pod_ready(p) for p in pods)
    return report


def not_found(exc: ReleaseNotFound, release: str, namespace: str, fix: str) -> ReleaseNotFound:
    """helm's "release: not found", said with the release and namespace that were asked for."""
    error = ReleaseNotFound(
        f"release {release!r} not found in namespace {namespace!r}",
        verb=exc.verb,
        stderr=exc.stderr,
        fix=fix,
    )
    return error


def print_status(report: ReleaseStatus, out: TextIO) -> None:
    print(
        f"release {report.release} (namespace {report.namespace}): revision {report.revision}, "
        f"{report.status}, chart {report.chart}",
        file=out,
    )
    for line in report.pods or ["(no pods)"]:
        print(f"  pod {line}", file=out)
    for line in report.pvcs or ["(no claims)"]:
        print(f"  {line}", file=out)
    if report.endpoint:
        print(f"  endpoint (in cluster): {report.endpoint}", file=out)
    if report.recovery:
        print(f"  {report.recovery}", file=out)
