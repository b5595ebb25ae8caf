"""Kubernetes objects as dicts: reading manifests, finding an object's URL through discovery,
and the condition and time helpers the ArgoCD and Tekton code share."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from archon.errors import UsageError
from archon.kube.rest import Kube, KubeError, Obj

CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def now() -> str:
    """RFC 3339 in UTC with seconds, as the API server writes metav1.Time."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_documents(path: Path) -> list[Obj]:
    """The mappings of a (multi-document) YAML file; UsageError naming the file otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot read: {exc.strerror or exc}",
            source=str(path),
            fix="pass an existing manifest file",
        ) from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(
            f"not valid YAML{where}", source=str(path), fix="repair the YAML and retry"
        ) from exc
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("kind") or not doc.get("apiVersion"):
            raise UsageError(
                "a document without kind/apiVersion",
                source=str(path),
                fix="every document must be a Kubernetes object",
            )
    return docs


class CrdsMissing(UsageError):
    """The cluster does not serve a controller's kinds: nothing can be applied or followed."""


@dataclass(frozen=True)
class ControllerApi:
    """The API group of one controller (ArgoCD, Tekton) as Archon uses it."""

    product: str
    group_version: str
    plurals: Mapping[str, str]  # kind -> resource
    probe_crd: str  # the CRD whose presence means the controller's kinds are installed
    install_fix: str

    def path(self, kind: str, namespace: str, name: str = "") -> str:
        base = f"/apis/{self.group_version}/namespaces/{quote(namespace)}/{self.plurals[kind]}"
        return f"{base}/{quote(name)}" if name else base

    def require_crds(self, kube: Kube) -> None:
        if not crd_present(kube, self.probe_crd):
            raise CrdsMissing(
                f"{self.product} CRDs not installed in this cluster", fix=self.install_fix
            )


def crd_present(kube: Kube, name: str) -> bool:
    try:
        kube.get(f"{CRD_API}/{quote(name)}")
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def group_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@cache
def _resources(kube: Kube, group_version_path: str) -> dict[str, tuple[str, bool]]:
    listing = kube.get(group_version_path)
    return {
        str(r["kind"]): (str(r["name"]), bool(r.get("namespaced")))
        for r in listing.get("resources") or []
        if "/" not in str(r.get("name", ""))
    }


def collection_path(kube: Kube, api_version: str, kind: str, namespace: str) -> tuple[str, bool]:
    """The collection URL of a kind (discovery, cached per client) and whether it is
    namespaced; UsageError when the API server does not serve the kind."""
    base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
    try:
        found = _resources(kube, base).get(kind)
    except KubeError as exc:
        if exc.status != 404:
            raise
        found = None
    if found is None:
        raise UsageError(
            f"the cluster does not serve {kind} ({api_version})",
            key="kind",
            fix="install its CustomResourceDefinition first",
        )
    plural, namespaced = found
    if namespaced:
        return f"{base}/namespaces/{quote(namespace)}/{plural}", True
    return f"{base}/{plural}", False


def object_path(kube: Kube, obj: Obj, namespace: str) -> str:
    """The URL of one object; `namespace` when the manifest names none."""
    meta = obj.get("metadata") or {}
    ns = str(meta.get("namespace") or namespace)
    base, _ = collection_path(kube, str(obj["apiVersion"]), str(obj["kind"]), ns)
    return f"{base}/{quote(str(meta['name']))}"


def get_or_none(kube: Kube, path: str) -> Obj | None:
    try:
        return kube.get(path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def condition(obj: Obj, kind: str) -> Obj:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return dict(cond)
    return {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def deep_get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj
