"""`archon uninstall`: remove the release; the model-cache claim stays (the chart marks it with
`helm.sh/resource-policy: keep`), so a re-install finds the downloaded model again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

from archon.deploy.install import resolve_kubeconfig
from archon.deploy.progress import selector
from archon.helm_client import helm_command, release_error
from archon.kube.client import api_client
from archon.kube.rest import Kube

UNINSTALL_TIMEOUT_S = 120


def uninstall(kubeconfig: Path | None, namespace: str, release: str, *, out: TextIO) -> list[str]:
    """Uninstall and wait for the release's pods to go; returns the claims that were kept."""
    config = resolve_kubeconfig(kubeconfig)
    helm = helm_command(config)
    try:
        asyncio.run(
            helm.uninstall(
                release, namespace=namespace, wait=True, timeout=f"{UNINSTALL_TIMEOUT_S}s"
            )
        )
    except Exception as exc:
        raise release_error(
            exc,
            action="uninstall",
            release=release,
            namespace=namespace,
            not_found_fix="list releases with `archon status` or check --namespace/--release",
        ) from exc
    kube = Kube(api_client(config))
    claims = kube.items(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", labelSelector=selector(release)
    )
    kept = [c["metadata"]["name"] for c in claims]
    print(f"release {release!r} uninstalled from namespace {namespace!r}", file=out)
    for name in kept:
        print(
            f"kept PVC {name} (model cache, helm.sh/resource-policy: keep): a re-install reuses "
            f"it; delete it with `kubectl -n {namespace} delete pvc {name}`",
            file=out,
        )
    return kept
