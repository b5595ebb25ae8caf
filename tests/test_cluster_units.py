"""Cluster pieces that need no running cluster: nodes, profiles, kwokctl configuration, stages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archon.cluster.gpu_nodes import DEFAULT_PROFILES, find_profile
from archon.cluster.lifecycle import STAGES_FILE, kwokctl_config
from archon.deploy.progress import pod_lines
from archon.errors import UsageError


def test_nvidia_node_has_gpu_resource_and_gfd_labels() -> None:
    node = find_profile("RTX 5080").node()
    assert node["status"]["capacity"]["nvidia.com/gpu"] == "1"
    assert node["status"]["allocatable"] == node["status"]["capacity"]
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-GeForce-RTX-5080"
    assert labels["nvidia.com/gpu.memory"] == "16303"  # gpus.md: reported MiB
    assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_amd_node_has_labeller_labels() -> None:
    labels = find_profile("rx7900xtx").node()["metadata"]["labels"]
    assert labels["amd.com/gpu.vram"] == "24G"
    assert labels["amd.com/gpu.family"] == "NV"
    assert "nvidia.com/gpu.product" not in labels


def test_default_profiles_and_unknown_profile() -> None:
    assert [find_profile(p).vendor for p in DEFAULT_PROFILES] == ["nvidia", "amd"]
    with pytest.raises(UsageError) as info:
        find_profile("GTX 9999")
    assert "unknown GPU 'GTX 9999'" in info.value.line()
    assert "archon gpus" in info.value.line()


def test_any_card_the_preflight_knows_becomes_a_node() -> None:
    node = find_profile("RTX 5070").node()
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.memory"] == "12227"  # the preflight's figure for the card
    assert labels["nvidia.com/gpu.family"] == "blackwell"
    assert find_profile("RX 9070 XT").vendor == "amd"


def test_kwokctl_config_is_loopback_binary_runtime_with_all_stages() -> None:
    binaries = {
        n: Path(f"/bin/{n}")
        for n in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    }
    docs = list(yaml.safe_load_all(kwokctl_config(binaries)))
    options = docs[0]["options"]
    assert options["runtime"] == "binary"
    assert options["bindAddress"] == "127.0.0.1"
    assert options["kubeAdmission"] is True
    assert options["kubeApiserverBinary"] == "/bin/kube-apiserver"
    stages = {d["metadata"]["name"] for d in docs[1:]}
    # kwokctl drops its default node stages when any Stage is given: all must be here.
    assert {
        "node-initialize",
        "node-heartbeat-with-lease",
        "pod-ready",
        "pod-delete",
        "pvc-provision",
        "pv-bind",
    } <= stages
    assert STAGES_FILE.is_file() and STAGES_FILE.parent.name == "kwok", "package data"


def test_pod_lines_show_placement_and_scheduler_message() -> None:
    node = find_profile("RTX 5080").node()
    pod = {
        "metadata": {"name": "p"},
        "spec": {
            "nodeName": node["metadata"]["name"],
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    lines = pod_lines(pod, {node["metadata"]["name"]: node})
    assert lines["pod/p:place"].endswith("(nvidia.com/gpu x1, NVIDIA-GeForce-RTX-5080, 16303 MiB)")
    assert lines["pod/p:state"] == "pod/p: ready"
    pending = {
        "metadata": {"name": "q"},
        "spec": {},
        "status": {
            "conditions": [
                {"type": "PodScheduled", "status": "False", "message": "0/2 nodes are available"}
            ]
        },
    }
    assert pod_lines(pending, {}) == {
        "pod/q:place": "pod/q: not scheduled: 0/2 nodes are available"
    }


def test_a_pid_file_pointing_at_another_program_is_not_ours() -> None:
    import os

    from archon.cluster.lifecycle import _ours

    assert not _ours(os.getpid())  # the test runner is not a toolchain binary
    assert not _ours(2**22 + 7)  # no such process
