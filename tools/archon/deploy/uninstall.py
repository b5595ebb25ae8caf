"""`archon uninstall`: remove the release; the claims the chart marks with
`helm.sh/resource-policy: keep` stay (the model cache, the council's Qdrant store), so a
re-install finds the downloaded model and the council's memory again."""

from __future__ import annotations

from typing import TextIO

from archon.deploy.progress import selector
from archon.deploy.status import not_found
from archon.helm import Helm, ReleaseNotFound
from archon.kube.client import reach_api
from archon.kube.config import ClusterTarget
from archon.kube.rest import Kube

UNINSTALL_TIMEOUT_S = 120
COMPONENT_LABEL = "app.kubernetes.io/component"
# What each kept claim holds, by the component label the chart gives it.
KEPT_CLAIMS = {"model-cache": "model cache", "qdrant": "the council's memory"}


def uninstall(target: ClusterTarget, namespace: str, release: str, *, out: TextIO) -> list[str]:
    """Uninstall and wait for the release's pods to go; returns the claims that were kept."""
    api = reach_api(target, timeout_s=10)
    try:
        Helm(target).uninstall(release, namespace, timeout_s=UNINSTALL_TIMEOUT_S)
    except ReleaseNotFound as exc:
        fix = "list releases with `archon status` or check --namespace/--release"
        raise not_found(exc, release, namespace, fix) from exc
    kube = Kube(api)
    claims = kube.items(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", labelSelector=selector(release)
    )
    kept = [c["metadata"]["name"] for c in claims]
    print(f"release {release!r} uninstalled from namespace {namespace!r}", file=out)
    for claim in claims:
        name = claim["metadata"]["name"]
        component = (claim["metadata"].get("labels") or {}).get(COMPONENT_LABEL, "")
        what = KEPT_CLAIMS.get(component, "data")
        print(
            f"kept PVC {name} ({what}, helm.sh/resource-policy: keep): a re-install reuses "
            f"it; delete it with `kubectl -n {namespace} delete pvc {name}`",
            file=out,
        )
    return kept
