"""Integration: the real control plane (kwokctl binary runtime) with fake GPU nodes, helm v4.

One cluster per session; each test uses its own namespace and bounds every wait. Skipped when
the cluster binaries are not built, except in CI (CI=true), where the fixture builds them.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml

from archon.errors import ArchonError, CommandFailed, ProblemsFound
from cluster_support import drop_namespace
from cluster_support import pods as live_pods

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.integration

TIMEOUT_S = 90  # helm --wait bound for installs that must succeed (they take seconds here)


def _values(tmp_path: Path, name: str, data: dict[str, Any]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _deploy(files: list[Path], namespace: str, *, timeout: int = TIMEOUT_S, dry: bool = False):  # type: ignore[no-untyped-def]
    from archon.cluster.lifecycle import local_target
    from archon.deploy.install import DeployOptions, deploy

    out = io.StringIO()
    opts = DeployOptions(
        files, namespace=namespace, target=local_target(), timeout_s=timeout, dry_run=dry
    )
    return deploy(opts, out=out), out.getvalue()


def _node_labels(kube: Any, name: str) -> dict[str, str]:
    labels: dict[str, str] = kube.get(f"/api/v1/nodes/{name}")["metadata"]["labels"]
    return labels


NVIDIA = REPO_ROOT / "values" / "rtx5080.yaml"
AMD = REPO_ROOT / "values" / "rx7900xtx.yaml"


def test_cluster_is_real_loopback_and_idempotent(cluster: Path, kube: Any) -> None:
    from archon.cluster.lifecycle import cluster_status, up

    again = up(None, out=io.StringIO())  # a second up changes nothing
    info = cluster_status()
    assert again.pids == info.pids
    assert info.server.startswith("https://127.0.0.1:")
    assert info.version.startswith("v1.35.")
    gpus = {n.name: (n.resource, n.capacity) for n in info.nodes}
    assert gpus == {"gpu-rtx5080-0": ("nvidia.com/gpu", 1), "gpu-rx7900xtx-0": ("amd.com/gpu", 1)}
    assert kube.get("/apis/node.k8s.io/v1/runtimeclasses/nvidia")["handler"] == "nvidia"
    default = kube.get("/apis/storage.k8s.io/v1/storageclasses/archon-local")
    assert default["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"]


def _scenarios() -> list[Path]:
    root = REPO_ROOT
    return sorted((root / "charts" / "archon" / "ci").glob("*-values.yaml")) + sorted(
        (root / "values").glob("*.yaml")
    )


@pytest.mark.parametrize("values", _scenarios(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_server_side_dry_run_admits_every_scenario(cluster: Path, kube: Any, values: Path) -> None:
    namespace = "it-dry-run"
    kube.create_or_merge(
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
    )
    if "metrics" in yaml.safe_load(values.read_text()):
        from archon.gitops.crds import install_crds

        # the opt-in ServiceMonitor and PrometheusRule, judged by the pinned upstream CRDs
        install_crds(kube, "prometheus-operator", out=io.StringIO())
    result, _ = _deploy([values], namespace, dry=True)
    assert result.status == "dry-run"
    assert result.objects >= 2
    assert live_pods(kube, namespace) == []  # a dry-run applies nothing


def test_install_ready_then_recreate_upgrade_on_one_gpu(
    cluster: Path, kube: Any, namespace: str, tmp_path: Path
) -> None:
    first, printed = _deploy([NVIDIA], namespace)
    assert first.revision == 1 and first.status == "deployed"
    assert "scheduled on gpu-rtx5080-0" in printed and ": ready" in printed
    before = live_pods(kube, namespace)[0]["metadata"]["labels"]["pod-template-hash"]
    change = _values(tmp_path, "change.yaml", {"model": {"maxModelLen": 4096}})
    second, _ = _deploy([NVIDIA, change], namespace)
    assert second.revision == 2 and second.status == "deployed"
    pods = live_pods(kube, namespace)
    assert len(pods) == 1  # Recreate: the old pod gave its GPU back before the new one started
    assert pods[0]["metadata"]["labels"]["pod-template-hash"] != before
    configs = kube.items(f"/api/v1/namespaces/{namespace}/configmaps")
    assert any("4096" in str(c.get("data")) for c in configs)


def test_surge_strategy_is_refused_at_render_time(
    cluster: Path, kube: Any, namespace: str, tmp_path: Path
) -> None:
    surge = _values(
        tmp_path,
        "surge.yaml",
        {
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            }
        },
    )
    with pytest.raises(ArchonError) as info:
        _deploy([NVIDIA, surge], namespace)
    assert "RollingUpdate" in info.value.line()
    assert live_pods(kube, namespace) == []


def test_failed_upgrade_rolls_back_and_says_why(
    cluster: Path, kube: Any, namespace: str, tmp_path: Path, run_cli: Any
) -> None:
    _deploy([NVIDIA], namespace)
    # Two GPUs on a one-GPU node (the values claim a two-GPU node, so the chart renders it).
    two = _values(
        tmp_path,
        "two-gpus.yaml",
        {"gpu": {"count": 2, "nodeCapacity": 2}, "model": {"tensorParallelSize": 2}},
    )
    result = run_cli(
        "deploy", "-f", str(NVIDIA), "-f", str(two), "-n", namespace, "--timeout", "20",
        "--kubeconfig", str(cluster),
    )  # fmt: skip
    assert result.code == 1
    assert "rolled back" in result.err
    assert "Insufficient nvidia.com/gpu" in result.err
    pods = live_pods(kube, namespace)
    assert len(pods) == 1
    limits = pods[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] in ("1", 1)  # the previous revision is back


def test_uninstall_keeps_the_pvc_and_reinstall_reuses_it(
    cluster: Path, kube: Any, namespace: str
) -> None:
    from archon.cluster.lifecycle import local_target
    from archon.deploy.uninstall import uninstall

    _deploy([NVIDIA], namespace)
    claims = kube.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert len(claims) == 1 and claims[0]["status"]["phase"] == "Bound"
    uid = claims[0]["metadata"]["uid"]
    out = io.StringIO()
    kept = uninstall(local_target(), namespace, "archon", out=out)
    assert kept == [claims[0]["metadata"]["name"]]
    assert "kept PVC" in out.getvalue()
    assert live_pods(kube, namespace) == []
    _deploy([NVIDIA], namespace)
    again = kube.items(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims")
    assert [c["metadata"]["uid"] for c in again] == [uid]


def test_deploy_and_status_json_for_scripts(
    cluster: Path, kube: Any, namespace: str, run_cli: Any
) -> None:
    import json

    result = run_cli(
        "deploy",
        "-f",
        str(NVIDIA),
        "-n",
        namespace,
        "--timeout",
        str(TIMEOUT_S),
        "--output",
        "json",
        "--kubeconfig",
        str(cluster),
    )
    assert result.code == 0, result.err
    deployed = json.loads(result.out)  # stdout holds the summary only; progress went to stderr
    assert (deployed["namespace"], deployed["status"], deployed["revision"]) == (
        namespace,
        "deployed",
        1,
    )
    assert "ready" in result.err
    assert deployed["cluster"]["source"] == "--kubeconfig"
    assert deployed["cluster"]["server"].startswith("https://127.0.0.1:")
    status = run_cli("status", "-n", namespace, "--output", "json", "--kubeconfig", str(cluster))
    assert status.code == 0
    report = json.loads(status.out)
    assert report["cluster"]["context"] == deployed["cluster"]["context"]
    assert report["ready"] is True and len(report["pods"]) == 1
    assert "gpu-rtx5080-0" in report["pods"][0]


def test_each_vendor_lands_on_its_own_node(cluster: Path, kube: Any) -> None:
    for values, namespace, label, other in (
        (AMD, "it-amd", "amd.com/gpu.product-name", "nvidia.com/gpu.product"),
        (NVIDIA, "it-nvidia", "nvidia.com/gpu.product", "amd.com/gpu.product-name"),
    ):
        try:
            _deploy([values], namespace)
            pods = live_pods(kube, namespace)
            assert len(pods) == 1
            labels = _node_labels(kube, pods[0]["spec"]["nodeName"])
            assert label in labels and other not in labels
        finally:
            drop_namespace(kube, namespace)


def test_preflight_fail_applies_nothing(
    cluster: Path, kube: Any, namespace: str, tmp_path: Path
) -> None:
    too_big = _values(
        tmp_path,
        "too-big.yaml",
        {"model": {"name": "Qwen/Qwen2.5-Coder-32B-Instruct", "quantization": ""}},
    )
    with pytest.raises((ProblemsFound, CommandFailed)) as info:
        _deploy([NVIDIA, too_big], namespace)
    assert isinstance(info.value, ProblemsFound)
    namespaces = {n["metadata"]["name"] for n in kube.items("/api/v1/namespaces")}
    assert namespace not in namespaces  # not even the namespace was created


def test_a_missing_release_is_release_not_found(cluster: Path, run_cli: Any) -> None:
    from archon.cluster.lifecycle import local_target
    from archon.helm import Helm, ReleaseNotFound

    with pytest.raises(ReleaseNotFound):
        Helm(local_target()).history("archon", "it-nothing-here")
    result = run_cli("status", "-n", "it-nothing-here", "--kubeconfig", str(cluster))
    assert result.code == 1
    assert "release 'archon' not found in namespace 'it-nothing-here'" in result.err
    assert len(result.err.strip().splitlines()) == 1
