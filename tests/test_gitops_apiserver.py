"""Integration: the upstream ArgoCD and Tekton CRDs on the real local kube-apiserver.

The CRDs are installed server-side (install_crds), and every manifest in argocd/ and ci/tekton/
goes through the API server's own admission: schema, CEL rules, pruning of unknown fields.
Nothing here runs the ArgoCD or Tekton controllers. Skipped when the cluster binaries are not
built, except in CI (CI=true), where the fixture builds them.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parent.parent
ARGOCD = REPO_ROOT / "argocd"
TEKTON = REPO_ROOT / "ci" / "tekton"

NAMESPACE = "it-gitops-manifests"
CI_NAMESPACE = "it-gitops-ci"
TARGET_NAMESPACE = "it-gitops-target"


@pytest.fixture(scope="module")
def installed(kube: Any) -> dict[str, list[str]]:
    from archon.gitops.crds import install_crds

    out = io.StringIO()
    names = {which: install_crds(kube, which, out=out) for which in ("argocd", "tekton")}
    return names


@pytest.fixture(scope="module")
def namespaces(kube: Any, installed: dict[str, list[str]]) -> Iterator[None]:
    for name in (NAMESPACE, CI_NAMESPACE, TARGET_NAMESPACE):
        kube.create_or_merge("/api/v1/namespaces", {"metadata": {"name": name}})
    yield
    for name in (NAMESPACE, CI_NAMESPACE, TARGET_NAMESPACE):
        kube.delete(f"/api/v1/namespaces/{name}")
    for kind in ("clusterrolebindings", "clusterroles"):
        kube.delete(f"/apis/rbac.authorization.k8s.io/v1/{kind}/it-gitops-deployer")
    # the deployed server gives its GPU back before the next file deploys
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and kube.items(f"/api/v1/namespaces/{TARGET_NAMESPACE}/pods"):
        time.sleep(0.5)


@pytest.fixture(scope="module")
def deployer(kube: Any, namespaces: None) -> None:
    """rbac.yaml applied for real, with the test's namespaces and cluster-wide names."""
    for doc in _rbac_for_test():
        namespace = doc["metadata"].get("namespace", "")
        kube.apply(_path(kube, doc, namespace), doc)


def _docs(*folders: Path) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in folders:
        for path in sorted(folder.glob("*.yaml")):
            if path.name == "kustomization.yaml":
                continue
            rel = str(path.relative_to(REPO_ROOT))
            found += [(rel, d) for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def _resource(kube: Any, api_version: str, kind: str) -> dict[str, Any]:
    """The API resource serving `kind`, from discovery (a new CRD may take a moment to appear)."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    deadline = time.monotonic() + 20
    while True:
        try:
            for res in kube.get(base)["resources"]:
                if res["kind"] == kind and "/" not in res["name"]:
                    return {"base": base, **res}
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} not served at {base}")
        time.sleep(0.5)


def _path(kube: Any, doc: dict[str, Any], namespace: str, *, named: bool = True) -> str:
    res = _resource(kube, doc["apiVersion"], doc["kind"])
    path = res["base"]
    if res["namespaced"]:
        path += f"/namespaces/{namespace}"
    path += f"/{res['name']}"
    return f"{path}/{doc['metadata']['name']}" if named else path


def test_crds_are_installed_server_side_and_established(
    kube: Any, installed: dict[str, list[str]]
) -> None:
    from archon.gitops.crds import crd_documents, install_crds

    assert sorted(installed["argocd"]) == [
        "applications.argoproj.io",
        "applicationsets.argoproj.io",
        "appprojects.argoproj.io",
    ]
    assert len(installed["tekton"]) == 6
    for name in installed["argocd"] + installed["tekton"]:
        crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True"
        managers = {(m["manager"], m["operation"]) for m in crd["metadata"]["managedFields"]}
        assert ("archon", "Apply") in managers
        # server-side: no client-side last-applied copy (the ApplicationSet CRD would not fit)
        annotations = crd["metadata"].get("annotations") or {}
        assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations
    (appset,) = [
        d for d in crd_documents("argocd") if d["spec"]["names"]["kind"] == "ApplicationSet"
    ]
    assert len(yaml.safe_dump(appset)) > 256 * 1024  # too large for that annotation
    out = io.StringIO()
    assert install_crds(kube, "argocd", out=out) == installed["argocd"]  # idempotent
    assert "3 argocd CRDs established" in out.getvalue()


def test_every_manifest_is_admitted_by_the_api_server(kube: Any, namespaces: None) -> None:
    admitted = []
    for rel, doc in _docs(ARGOCD, TEKTON):
        body = copy.deepcopy(doc)
        if "namespace" in body["metadata"]:
            body["metadata"]["namespace"] = NAMESPACE
        if body["metadata"].get("name"):
            # server-side apply, as ArgoCD with ServerSideApply=true and kubectl --server-side do
            result = kube.apply(_path(kube, body, NAMESPACE), body, dry_run=True)
        else:  # generateName: only a create names it
            result = kube.request(
                "POST",
                _path(kube, body, NAMESPACE, named=False),
                body,
                query={"dryRun": "All", "fieldValidation": "Strict"},
            )
        assert result["kind"] == doc["kind"], rel
        # nothing was pruned: every field we wrote came back
        assert result["spec" if "spec" in doc else "metadata"], rel
        if "spec" in doc:
            assert set(doc["spec"]) <= set(result["spec"]), rel
        admitted.append((rel, doc["kind"]))
    kinds = {kind for _, kind in admitted}
    assert {"AppProject", "Application", "ApplicationSet", "Task", "Pipeline"} <= kinds
    assert {"PipelineRun", "ServiceAccount", "Role", "ClusterRole"} <= kinds
    assert len(admitted) == len(_docs(ARGOCD, TEKTON))


@pytest.mark.parametrize(
    ("rel", "old", "new", "field"),
    [
        ("argocd/application.yaml", "releaseName:", "releseName:", "releseName"),
        ("argocd/applicationset.yaml", "goTemplate: true", "goTemplat: true", "goTemplat"),
        ("ci/tekton/archon-smoke.yaml", "runAsNonRoot:", "runAsNonRot:", "runAsNonRot"),
        ("ci/tekton/pipeline.yaml", "  finally:\n", "  finaly:\n", "finaly"),
    ],
)
def test_an_unknown_field_is_rejected_by_the_api_server(
    kube: Any, namespaces: None, rel: str, old: str, new: str, field: str
) -> None:
    from archon.kube.rest import KubeError

    text = (REPO_ROOT / rel).read_text()
    assert old in text
    (doc,) = yaml.safe_load_all(text.replace(old, new, 1))
    doc["metadata"]["namespace"] = NAMESPACE
    # server-side apply cannot even type the patch (kube-apiserver answers 500 for that)
    with pytest.raises(KubeError) as applied:
        kube.apply(_path(kube, doc, NAMESPACE), doc, dry_run=True)
    assert f"{field}: field not declared in schema" in applied.value.message
    # a create with strict field validation, as `kubectl create` sends it: a client error
    with pytest.raises(KubeError) as created:
        kube.request(
            "POST",
            _path(kube, doc, NAMESPACE, named=False),
            doc,
            query={"dryRun": "All", "fieldValidation": "Strict"},
        )
    assert 400 <= created.value.status < 500
    assert 'unknown field "' in created.value.message and field in created.value.message


def test_the_api_server_alone_misses_what_tekton_validate_catches(
    kube: Any, namespaces: None, tmp_path: Path
) -> None:
    """The CRD schema cannot see the task graph; Tekton's webhook (here tekton-validate) does."""
    import subprocess

    from archon.toolchain import ensure

    text = (TEKTON / "pipeline.yaml").read_text()
    broken = text.replace("runAfter: [render-validate]", "runAfter: [render-validat]", 1)
    assert broken != text
    (doc,) = yaml.safe_load_all(broken)
    doc["metadata"]["namespace"] = NAMESPACE
    kube.apply(_path(kube, doc, NAMESPACE), doc, dry_run=True)  # admitted: schema-valid
    file = tmp_path / "pipeline.yaml"
    file.write_text(broken)
    proc = subprocess.run(
        [str(ensure("tekton-validate")), str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "render-validat" in proc.stdout


def _rbac_for_test() -> list[dict[str, Any]]:
    """rbac.yaml with the test's namespaces and cluster-wide names."""
    docs = [
        d
        for _, d in _docs(TEKTON)
        if d["apiVersion"].startswith("rbac.") or d["kind"] == "ServiceAccount"
    ]
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "ServiceAccount":
            meta["namespace"] = CI_NAMESPACE
        elif doc["kind"] in ("Role", "RoleBinding"):
            meta["namespace"] = TARGET_NAMESPACE
        else:
            meta["name"] = "it-gitops-deployer"
            for rule in doc.get("rules", []):
                if "resourceNames" in rule:
                    rule["resourceNames"] = [TARGET_NAMESPACE]
        if doc["kind"] == "ClusterRoleBinding":
            doc["roleRef"]["name"] = "it-gitops-deployer"
        for subject in doc.get("subjects", []):
            subject["namespace"] = CI_NAMESPACE
    return docs


def _can(
    kube: Any, verb: str, resource: str, *, group: str = "", namespace: str = "", name: str = ""
) -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": f"system:serviceaccount:{CI_NAMESPACE}:archon-deployer",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{CI_NAMESPACE}"],
            "resourceAttributes": {
                "verb": verb,
                "resource": resource,
                "group": group,
                "namespace": namespace,
                "name": name,
            },
        },
    }
    answer = kube.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
    return bool(answer["status"].get("allowed"))


def test_the_deployer_may_change_the_release_namespace_and_nothing_else(
    kube: Any, deployer: None
) -> None:
    target = TARGET_NAMESPACE
    # the authorizer of the real API server decides
    assert _can(kube, "create", "deployments", group="apps", namespace=target)
    assert _can(kube, "patch", "persistentvolumeclaims", namespace=target)
    assert _can(kube, "create", "secrets", namespace=target)  # helm's release records
    assert _can(kube, "watch", "pods", namespace=target)
    assert _can(kube, "list", "nodes")
    assert _can(kube, "patch", "namespaces", name=target)  # helm --create-namespace applies it
    assert not _can(kube, "patch", "namespaces", name="kube-system")
    assert not _can(kube, "create", "namespaces")
    assert not _can(kube, "create", "deployments", group="apps", namespace="kube-system")
    assert not _can(kube, "get", "secrets", namespace="kube-system")
    assert not _can(kube, "delete", "pods", namespace=target)
    # the chart's API key hook has a Role of its own: the deployer may create Roles in the
    # release namespace, but RBAC lets it grant only what it holds (no escalate, no bind)
    rbac = "rbac.authorization.k8s.io"
    assert _can(kube, "create", "roles", group=rbac, namespace=target)
    assert not _can(kube, "escalate", "roles", group=rbac, namespace=target)
    assert not _can(kube, "bind", "clusterroles", group=rbac)
    assert not _can(kube, "create", "roles", group=rbac, namespace="kube-system")
    assert not _can(kube, "delete", "nodes")
    assert not _can(kube, "delete", "namespaces")
    assert not _can(kube, "create", "daemonsets", group="apps", namespace=target)


def _deployer_kubeconfig(kube: Any, admin: Path, tmp_path: Path) -> Path:
    """A kubeconfig that authenticates as the deployer's service account (a bound token)."""
    request: dict[str, Any] = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
    request["spec"] = {"expirationSeconds": 600}
    path = f"/api/v1/namespaces/{CI_NAMESPACE}/serviceaccounts/archon-deployer/token"
    token = kube.create(path, request)["status"]["token"]
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    config["users"] = [{"name": "archon-deployer", "user": {"token": token}}]
    context = {"cluster": cluster["name"], "user": "archon-deployer"}
    config["contexts"] = [{"name": "archon-deployer", "context": context}]
    config["current-context"] = "archon-deployer"
    file = tmp_path / "deployer.kubeconfig"
    file.write_text(yaml.safe_dump(config))
    return file


def test_archon_deploy_succeeds_with_only_the_deployers_rights(
    kube: Any, deployer: None, cluster: Path, tmp_path: Path
) -> None:
    """What the Tekton deploy task runs, as the account it runs with: enough, and no more."""
    from archon.deploy.install import DeployOptions, deploy
    from archon.errors import ArchonError
    from archon.kube.config import resolve_target

    target = resolve_target(_deployer_kubeconfig(kube, cluster, tmp_path))
    values = [REPO_ROOT / "values" / "rtx5080.yaml"]
    opts = DeployOptions(values, namespace=TARGET_NAMESPACE, target=target, timeout_s=90)
    result = deploy(opts, out=io.StringIO())
    assert result.status == "deployed"
    assert result.endpoint.endswith(f".{TARGET_NAMESPACE}.svc:8000/v1")
    # the same account cannot install the release anywhere else
    elsewhere = DeployOptions(values, namespace="kube-system", target=target, timeout_s=30)
    with pytest.raises(ArchonError) as info:
        deploy(elsewhere, out=io.StringIO())
    assert "forbidden" in info.value.line().lower()
