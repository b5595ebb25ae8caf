"""Prepare a cluster for `archon argocd` and `archon tekton`: the upstream CRDs and the
namespaces ArgoCD's and Tekton's own installs would create (no controllers)."""

from __future__ import annotations

from typing import TextIO
from urllib.parse import quote

from archon.gitops.argocd import DEFAULT_NAMESPACE as ARGOCD_NAMESPACE
from archon.gitops.crds import install_crds
from archon.gitops.tekton import DEFAULT_NAMESPACE as TEKTON_NAMESPACE
from archon.kube.rest import Kube

FIELD_MANAGER = "archon"


def ensure_namespace(kube: Kube, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    kube.apply(f"/api/v1/namespaces/{quote(name)}", body, field_manager=FIELD_MANAGER)


def install_gitops(kube: Kube, *, out: TextIO) -> list[str]:
    """Both CRD sets, Established, plus the `argocd` and `archon-ci` namespaces."""
    names = [*install_crds(kube, "argocd", out=out), *install_crds(kube, "tekton", out=out)]
    for namespace in (ARGOCD_NAMESPACE, TEKTON_NAMESPACE):
        ensure_namespace(kube, namespace)
    return names
