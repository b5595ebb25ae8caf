"""Integration, on the real local kube-apiserver: every pod of every scenario (NVIDIA and AMD) is
admitted by Pod Security `restricted`, and the API key hook creates its Secret once with nothing
but the rights its Role grants. The session's one cluster: the `cluster` fixture of conftest.py."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import CHART, PROFILES, SCENARIOS, Obj

pytestmark = pytest.mark.integration

# own names per session: a namespace of an earlier run may still be terminating
RESTRICTED = f"it-pod-security-{os.getpid()}"
HOOK_NS = f"it-api-key-{os.getpid()}"


def _pods(objects: list[Obj]) -> list[Obj]:
    """Every pod the chart would run, as a Pod: helm test Pods, and each workload's template."""
    pods = []
    for obj in objects:
        if obj["kind"] == "Pod":
            pods.append(obj)
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            template = obj["spec"]["template"]
            name = f"{obj['kind'].lower()}-{obj['metadata']['name']}"[:63]
            meta = {"name": name, "labels": template["metadata"].get("labels", {})}
            pods.append(
                {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
            )
    return pods


@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_pod_is_admitted_under_restricted(
    values_file: Path, kube: Any, render: Callable[..., list[Obj]]
) -> None:
    kube.create_or_merge(
        "/api/v1/namespaces",
        {
            "metadata": {
                "name": RESTRICTED,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                },
            }
        },
    )
    pods = _pods(render(values_file))
    assert pods
    for pod in pods:
        pod = json.loads(json.dumps(pod))
        pod["metadata"]["namespace"] = RESTRICTED
        # Admission looks the account up: the chart's own is not applied here, and `default`
        # appears only once the controller-manager gets to a new namespace.
        account = pod["spec"].get("serviceAccountName") or "default"
        kube.create_or_merge(
            f"/api/v1/namespaces/{RESTRICTED}/serviceaccounts", {"metadata": {"name": account}}
        )
        # dry run: admission (Pod Security included) runs, nothing is stored
        kube.create(f"/api/v1/namespaces/{RESTRICTED}/pods", pod, dry_run=True)


def test_a_privileged_pod_is_refused_there(kube: Any, render: Callable[..., list[Obj]]) -> None:
    from archon.kube.rest import KubeError

    (pod,) = [p for p in _pods(render()) if p["metadata"]["name"].startswith("deployment-")]
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    pod["spec"].pop("serviceAccountName")
    kube.create_or_merge(
        "/api/v1/namespaces",
        {
            "metadata": {
                "name": RESTRICTED,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        },
    )
    kube.create_or_merge(
        f"/api/v1/namespaces/{RESTRICTED}/serviceaccounts", {"metadata": {"name": "default"}}
    )
    with pytest.raises(KubeError) as info:
        kube.create(f"/api/v1/namespaces/{RESTRICTED}/pods", pod, dry_run=True)
    assert "restricted" in str(info.value.message)


def _kubeconfig_ca(kubeconfig: Path) -> tuple[str, bytes]:
    config = yaml.safe_load(kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    if "certificate-authority-data" in cluster:
        ca = base64.b64decode(cluster["certificate-authority-data"])
    else:
        ca = Path(cluster["certificate-authority"]).read_bytes()
    return str(cluster["server"]), ca


def test_the_hook_creates_the_key_once_with_its_role_only(
    kube: Any, cluster: Path, render: Callable[..., list[Obj]], tmp_path: Path
) -> None:
    from archon.kube.rest import KubeError

    kube.create_or_merge("/api/v1/namespaces", {"metadata": {"name": HOOK_NS}})
    objects = render()
    hooks = {
        o["kind"]: o
        for o in objects
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == "api-key"
    }
    paths = {
        "ServiceAccount": f"/api/v1/namespaces/{HOOK_NS}/serviceaccounts",
        "Role": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{HOOK_NS}/roles",
        "RoleBinding": f"/apis/rbac.authorization.k8s.io/v1/namespaces/{HOOK_NS}/rolebindings",
    }
    for kind, path in paths.items():
        doc = json.loads(json.dumps(hooks[kind]).replace('"ai"', f'"{HOOK_NS}"'))
        kube.create_or_merge(path, doc)
    account = hooks["ServiceAccount"]["metadata"]["name"]
    token = kube.create(
        f"/api/v1/namespaces/{HOOK_NS}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )["status"]["token"]
    server, ca = _kubeconfig_ca(cluster)
    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_bytes(ca)
    (sa / "namespace").write_text(HOOK_NS)
    host, port = server.removeprefix("https://").rsplit(":", 1)
    job = hooks["Job"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in job["env"]}
    script = (CHART / "files" / "create_api_key.sh").read_text()
    run_env = dict(
        os.environ,
        KUBERNETES_SERVICE_HOST=host,
        KUBERNETES_SERVICE_PORT=port,
        ARCHON_SA_DIR=str(sa),
        **env,
    )
    secret_path = f"/api/v1/namespaces/{HOOK_NS}/secrets/{env['ARCHON_SECRET']}"
    kube.delete(secret_path)

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", "-ec", script],
            env=run_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    first = run()
    assert first.returncode == 0, first.stdout + first.stderr
    assert "created Secret archon-api-key" in first.stdout
    secret = kube.get(secret_path)
    key = base64.b64decode(secret["data"]["api-key"]).decode()
    assert key.startswith("sk-") and len(key) == 3 + 48
    assert secret["metadata"]["labels"]["app.kubernetes.io/part-of"] == "archon"
    second = run()
    assert second.returncode == 0 and "key kept" in second.stdout
    assert base64.b64decode(kube.get(secret_path)["data"]["api-key"]).decode() == key
    assert key not in first.stdout + second.stdout, "the key is never printed"
    # its token may do nothing else: no list, no reading another Secret
    bearer = ["-H", f"Authorization: Bearer {token}", "--cacert", str(sa / "ca.crt")]
    for url in (
        f"{server}/api/v1/namespaces/{HOOK_NS}/secrets",
        f"{server}/api/v1/namespaces/{HOOK_NS}/secrets/other",
    ):
        code = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *bearer, url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
        assert code == "403", url
    kube.delete(f"/api/v1/namespaces/{HOOK_NS}")
    with pytest.raises(KubeError):
        kube.get(f"/api/v1/namespaces/{HOOK_NS}/secrets/none-such")
