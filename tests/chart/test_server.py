"""templates/server: the vLLM Deployment, its engine config, download, probes, security, the
vendor switch, the Service and the names."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import (
    CHART,
    REPO_ROOT,
    Obj,
    container,
    engine_config,
    env_of,
    one,
    pod_spec,
)

pytestmark = pytest.mark.slow

STARTUP_BUDGET_S = 1800  # a first load of a 14B model with profiling and graphs on a slow disk


def test_default_engine_config_file(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    config = engine_config(objects)
    assert config == {
        "port": 8000,
        "served-model-name": "qwen2.5-coder-14b",
        "revision": "main",
        # gptq_marlin: an explicit gptq would force vLLM's slow non-Marlin kernel.
        "quantization": "gptq_marlin",
        "max-model-len": 8192,
        "gpu-memory-utilization": 0.9,
        "kv-cache-dtype": "auto",
        "enable-prefix-caching": True,
        "tensor-parallel-size": 1,
    }
    vllm = container(objects)
    assert vllm["command"] == ["vllm", "serve"]
    assert vllm["args"] == [
        "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4",
        "--config",
        "/etc/archon/vllm-config.yaml",
    ]
    mounts = {m["name"]: m for m in vllm["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/archon"
    assert vllm["image"] == "vllm/vllm-openai:v0.19.1"


def test_engine_options_use_vllm_cli_spelling(render: Callable[..., list[Obj]]) -> None:
    objects = render(
        {
            "model": {
                "servedModelName": "",
                "quantization": None,
                "dtype": "half",
                "maxNumSeqs": 16,
                "maxNumBatchedTokens": 4096,
                "kvCacheDtype": "fp8",
                "enablePrefixCaching": False,
                "enforceEager": True,
                "extraConfig": {"max-num-partial-prefills": 2},
                "extraArgs": ["--disable-log-stats"],
            }
        }
    )
    config = engine_config(objects)
    assert config["served-model-name"] == "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4"
    assert "quantization" not in config
    assert config["dtype"] == "half"
    assert config["max-num-seqs"] == 16
    assert config["max-num-batched-tokens"] == 4096
    assert config["kv-cache-dtype"] == "fp8"
    # A false boolean must become the negative flag: vLLM's loader would drop `key: false`.
    assert config["no-enable-prefix-caching"] is True
    assert "enable-prefix-caching" not in config
    assert config["enforce-eager"] is True
    assert config["max-num-partial-prefills"] == 2
    assert container(objects)["args"][-1] == "--disable-log-stats"


@pytest.mark.parametrize(
    "profile", ["rtx5080.yaml", "rtx5070.yaml", "rtx4090.yaml", "council.yaml"]
)
def test_nvidia_gptq_profiles_use_the_marlin_kernel(
    profile: str, render: Callable[..., list[Obj]]
) -> None:
    config = engine_config(render(REPO_ROOT / "values" / profile))
    assert config["quantization"] == "gptq_marlin"


def test_schema_accepts_the_marlin_quantizations(render: Callable[..., list[Obj]]) -> None:
    for name in ("gptq_marlin", "awq_marlin"):
        assert engine_config(render({"model": {"quantization": name}}))["quantization"] == name


def test_own_pod_labels_and_annotations_are_kept(render: Callable[..., list[Obj]]) -> None:
    objects = render({"podLabels": {"team": "home"}, "podAnnotations": {"note": "x"}})
    meta = one(objects, "Deployment")["spec"]["template"]["metadata"]
    assert meta["labels"]["team"] == "home" and meta["annotations"]["note"] == "x"


def test_checksum_rolls_the_pod_only_when_the_engine_config_changes(
    render: Callable[..., list[Obj]],
) -> None:
    def checksum(values: Obj | None) -> str:
        deployment = one(render(values), "Deployment")
        value: str = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        return value

    base = checksum(None)
    assert len(base) == 64
    assert checksum({"model": {"maxModelLen": 4096}}) != base
    assert checksum({"model": {"extraConfig": {"max-num-partial-prefills": 2}}}) != base
    assert checksum({"podLabels": {"team": "home"}}) == base


def test_download_runs_before_serving_and_the_server_stays_offline(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render()
    download = container(objects, "download")
    vllm = container(objects)
    assert download["image"] == vllm["image"]
    assert download["command"][:2] == ["python3", "-c"]
    assert "snapshot_download" in download["command"][2]
    download_env, server_env = env_of(download), env_of(vllm)
    assert download_env["ARCHON_MODEL"]["value"] == "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4"
    assert download_env["ARCHON_REVISION"]["value"] == "main"
    assert server_env["HF_HUB_OFFLINE"]["value"] == "1"
    assert "HF_HUB_OFFLINE" not in download_env
    assert "HF_TOKEN" not in download_env, "no token unless a Secret is named"
    # Both read and write the same Hub cache, on the model-cache volume.
    for c, env in ((download, download_env), (vllm, server_env)):
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["model-cache"] == env["HF_HOME"]["value"]


def test_hf_token_comes_from_a_secret_and_only_the_download_sees_it(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(CHART / "ci" / "existing-claim-values.yaml")
    download = container(objects, "download")
    # a file huggingface_hub reads (HF_TOKEN_PATH), never a variable
    assert env_of(download)["HF_TOKEN_PATH"]["value"] == "/var/run/secrets/huggingface/token"
    assert "HF_TOKEN" not in env_of(download)
    mount = next(m for m in download["volumeMounts"] if m["name"] == "hf-token")
    assert mount == {
        "name": "hf-token",
        "mountPath": "/var/run/secrets/huggingface",
        "readOnly": True,
    }
    volume = next(v for v in pod_spec(objects)["volumes"] if v["name"] == "hf-token")
    assert volume["secret"]["secretName"] == "hf-token"
    assert volume["secret"]["items"] == [{"key": "HF_TOKEN", "path": "token"}]
    assert volume["secret"]["defaultMode"] == 0o440
    vllm = container(objects)
    assert "HF_TOKEN_PATH" not in env_of(vllm) and "HF_TOKEN" not in env_of(vllm)
    assert "hf-token" not in {m["name"] for m in vllm["volumeMounts"]}


def test_probes_cover_a_slow_first_load(render: Callable[..., list[Obj]]) -> None:
    vllm = container(render())
    startup = vllm["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= STARTUP_BUDGET_S
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
        # An initial delay would be a guess; the startup probe gates the other two instead.
        assert "initialDelaySeconds" not in vllm[probe]


def test_default_strategy_is_recreate(render: Callable[..., list[Obj]]) -> None:
    assert one(render(), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_pods_run_hardened_with_writable_caches(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    spec = pod_spec(objects)
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    account = one(objects, "ServiceAccount", "archon")
    assert account["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["shm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "2Gi"}
    for c in (container(objects), container(objects, "download")):
        context = c["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["runAsNonRoot"] is True
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        env = env_of(c)
        home = env["HOME"]["value"]
        assert "emptyDir" in volumes[mounts[home]] and "emptyDir" in volumes[mounts["/tmp"]]
        # Every cache vLLM and its compilers write must land on a writable volume.
        for name in (
            "VLLM_CACHE_ROOT",
            "VLLM_CONFIG_ROOT",
            "TRITON_CACHE_DIR",
            "TORCHINDUCTOR_CACHE_DIR",
            "XDG_CACHE_HOME",
        ):
            assert env[name]["value"].startswith(home + "/"), name
        assert env["USER"]["value"], "getpass.getuser() needs USER for a uid without passwd entry"
    assert "/dev/shm" in {m["mountPath"] for m in container(objects)["volumeMounts"]}


def test_nvidia_pod_uses_runtime_class_and_nvidia_gpu(render: Callable[..., list[Obj]]) -> None:
    objects = render(CHART / "ci" / "nvidia-values.yaml")
    spec = pod_spec(objects)
    assert spec["runtimeClassName"] == "nvidia"
    assert "supplementalGroups" not in spec["securityContext"]
    resources = container(objects)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["limits"]["memory"] == "24Gi" and resources["limits"]["cpu"] == "8"
    assert resources["requests"]["memory"] == "16Gi" and resources["requests"]["cpu"] == "4"
    assert "amd.com/gpu" not in resources["limits"]
    assert container(objects)["image"] == "vllm/vllm-openai:v0.19.1"


def test_vendor_switch_alone_drops_the_nvidia_runtime(render: Callable[..., list[Obj]]) -> None:
    # One value switches vendor: the default NVIDIA runtime class must not leak into AMD pods.
    spec = pod_spec(render({"gpu": {"vendor": "amd"}}))
    assert "runtimeClassName" not in spec
    assert container(render({"gpu": {"vendor": "amd"}}))["image"].startswith(
        "vllm/vllm-openai-rocm:"
    )


@pytest.mark.parametrize(
    "values_file",
    [CHART / "ci" / "amd-values.yaml", REPO_ROOT / "values" / "rx7900xtx.yaml"],
    ids=lambda p: p.name,
)
def test_amd_pod_uses_rocm_image_amd_gpu_and_device_groups(
    values_file: Path, render: Callable[..., list[Obj]]
) -> None:
    objects = render(values_file)
    spec = pod_spec(objects)
    assert "runtimeClassName" not in spec
    assert spec["securityContext"]["supplementalGroups"] == [44, 992]
    vllm = container(objects)
    assert vllm["resources"]["limits"]["amd.com/gpu"] == 1
    assert "nvidia.com/gpu" not in vllm["resources"]["limits"]
    assert vllm["image"] == "vllm/vllm-openai-rocm:v0.19.1"
    assert container(objects, "download")["image"] == vllm["image"]


def test_gpu_count_and_resource_name_follow_the_values(render: Callable[..., list[Obj]]) -> None:
    values = {"gpu": {"count": 2, "nodeCapacity": 2}, "model": {"tensorParallelSize": 2}}
    objects = render(values)
    assert container(objects)["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert engine_config(objects)["tensor-parallel-size"] == 2


def test_api_key_comes_from_a_secret(render: Callable[..., list[Obj]]) -> None:
    assert "VLLM_API_KEY" not in env_of(container(render({"apiKey": {"enabled": False}})))
    for values, secret in (
        (None, "archon-api-key"),  # on by default: the Secret the hook Job creates
        ({"apiKey": {"existingSecret": "mine"}}, "mine"),
    ):
        objects = render(values)
        key = env_of(container(objects))["VLLM_API_KEY"]
        assert "value" not in key
        assert key["valueFrom"]["secretKeyRef"] == {"name": secret, "key": "api-key"}
        test_pod = one(objects, "Pod")
        test_env = env_of(test_pod["spec"]["containers"][0])
        assert test_env["ARCHON_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == secret


def test_service_exposes_http_8000_to_the_server_pods(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    service = one(objects, "Service")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert "app.kubernetes.io/version" not in service["spec"]["selector"]
    ports = container(objects)["ports"]
    assert ports == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_names_fit_63_characters_with_the_longest_release_name(
    render: Callable[..., list[Obj]],
) -> None:
    release = "a-very-long-release-name-for-the-home-lab-gpu-server"[:53]  # helm's own limit
    objects = render(CHART / "ci" / "ingress-tls-values.yaml", release=release)
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63, name
        assert not name.endswith("-"), name
        assert (obj["kind"], name) not in seen, f"two {obj['kind']} named {name}"
        seen.add((obj["kind"], name))
        for value in obj["metadata"].get("labels", {}).values():
            assert len(value) <= 63
    # The component suffix survives the cut, so the server and its config keep distinct names.
    assert one(objects, "Deployment")["metadata"]["name"].endswith("-server")
    assert one(objects, "ConfigMap")["metadata"]["name"].endswith("-server-config")


def test_a_slow_first_start_is_not_a_failed_rollout(render: Callable[..., list[Obj]]) -> None:
    # Kubernetes' default deadline (600 s) would mark the rollout failed during the download and
    # the load the startup probe still allows; helm --wait and ArgoCD would report it failed.
    objects = render(CHART / "ci" / "archetypes-values.yaml")
    vllm = [
        o for o in objects if o["kind"] == "Deployment" and "gateway" not in o["metadata"]["name"]
    ]
    assert len(vllm) == 2
    for deployment in vllm:
        startup = deployment["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
        budget = startup["periodSeconds"] * startup["failureThreshold"]
        assert deployment["spec"]["progressDeadlineSeconds"] == 3600 > budget
