"""`archon status`: the release (helm), its pods with their node and GPU, and its claims."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from archon.deploy.install import endpoint, resolve_kubeconfig
from archon.deploy.progress import ReleaseWatch, placement, pod_ready, pvc_line
from archon.helm_client import helm_command, release_error
from archon.kube.client import api_client
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


def release_status(kubeconfig: Path | None, namespace: str, release: str) -> ReleaseStatus:
    config = resolve_kubeconfig(kubeconfig)
    helm = helm_command(config)
    try:
        info = asyncio.run(helm.status(release, namespace=namespace))
    except Exception as exc:
        raise release_error(
            exc,
            action="status",
            release=release,
            namespace=namespace,
            not_found_fix="deploy it with `archon deploy -f values.yaml`",
        ) from exc
    report = ReleaseStatus(release, namespace)
    report.revision = int(info.get("version", 0))
    report.status = str((info.get("info") or {}).get("status", ""))
    # helm v4's `status -o json` has no chart field; `list` has "chart": "<name>-<version>".
    listed = json.loads(
        asyncio.run(
            helm.run(["list", "--namespace", namespace, "--filter", f"^{release}$", "-o", "json"])
        )
    )
    report.chart = str(listed[0].get("chart", "?")) if listed else "?"
    kube = Kube(api_client(config))
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
