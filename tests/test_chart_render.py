"""The archon chart rendered by the real, pinned helm: every scenario and profile, then the
behaviour each value promises (engine config, probes, storage, strategy guard, security, vendor
switch, secrets, ingress, names, rollouts). Values go to helm on stdin as an argument list."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
CHART = REPO_ROOT / "charts" / "archon"
SCENARIOS = sorted((CHART / "ci").glob("*-values.yaml"))
PROFILES = sorted((REPO_ROOT / "values").glob("*.yaml"))
HELM_TIMEOUT_S = 120
STARTUP_BUDGET_S = 1800  # a first load of a 14B model with profiling and graphs on a slow disk

Obj = dict[str, Any]


def _values_text(values: Obj | str | Path | None) -> str:
    if values is None:
        return ""
    if isinstance(values, Path):
        return values.read_text(encoding="utf-8")
    if isinstance(values, str):
        return values
    return yaml.safe_dump(values)


@pytest.fixture(scope="module")
def helm() -> Path:
    from archon.toolchain import ensure

    return ensure("helm")


@pytest.fixture(scope="module")
def run_helm(helm: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    def _run(
        args: list[str], values: Obj | str | Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(helm), *args, "-f", "-"],
            input=_values_text(values),
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_S,
            check=False,
        )

    return _run


@pytest.fixture(scope="module")
def render_text(run_helm: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., str]:
    def _render(values: Obj | str | Path | None = None, release: str = "archon") -> str:
        done = run_helm(["template", release, str(CHART), "--namespace", "ai"], values)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return _render


@pytest.fixture(scope="module")
def render(render_text: Callable[..., str]) -> Callable[..., list[Obj]]:
    def _render(values: Obj | str | Path | None = None, release: str = "archon") -> list[Obj]:
        docs = yaml.safe_load_all(render_text(values, release))
        return [d for d in docs if isinstance(d, dict)]

    return _render


@pytest.fixture(scope="module")
def render_error(run_helm: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., str]:
    def _render(values: Obj | str) -> str:
        done = run_helm(["template", "archon", str(CHART)], values)
        assert done.returncode != 0, "helm rendered values that must be refused"
        return done.stderr

    return _render


def one(objects: list[Obj], kind: str, name_suffix: str = "") -> Obj:
    found = [
        o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {len(found)}"
    return found[0]


def kinds(objects: list[Obj]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(objects: list[Obj], name: str = "vllm") -> Obj:
    spec = pod_spec(objects)
    every = spec["containers"] + spec.get("initContainers", [])
    found = [c for c in every if c["name"] == name]
    assert len(found) == 1, f"no container {name}"
    return found[0]


def env_of(c: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in c.get("env", [])}


def engine_config(objects: list[Obj]) -> Obj:
    server_config = one(objects, "ConfigMap", "-server-config")
    config: Obj = yaml.safe_load(server_config["data"]["vllm-config.yaml"])
    return config


# --- every scenario and profile -------------------------------------------------------------


def test_the_promised_scenarios_and_profiles_exist() -> None:
    scenarios = {p.name for p in SCENARIOS}
    assert {
        "nvidia-values.yaml",
        "amd-values.yaml",
        "ingress-tls-values.yaml",
        "existing-claim-values.yaml",
        "api-key-values.yaml",
        "minimal-values.yaml",
    } <= scenarios
    assert {"rtx5080.yaml", "rtx5070.yaml", "rx7900xtx.yaml", "rtx4090.yaml"} <= {
        p.name for p in PROFILES
    }


@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_values_file_lints_renders_and_validates(
    values_file: Path,
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
    render_text: Callable[..., str],
    tmp_path: Path,
) -> None:
    from archon.toolchain import ensure, ensure_schemas, schema_location
    from archon.toolchain.registry import kubernetes_version

    lint = run_helm(["lint", "--strict", str(CHART)], values_file)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "[WARNING]" not in lint.stdout and "[ERROR]" not in lint.stdout

    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(render_text(values_file), encoding="utf-8")
    ensure_schemas()
    done = subprocess.run(
        [
            str(ensure("kubeconform")),
            "-strict",
            "-summary",
            "-schema-location",
            schema_location(),
            "-kubernetes-version",
            kubernetes_version(),
            str(manifest),
        ],
        capture_output=True,
        text=True,
        timeout=HELM_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Skipped: 0" in done.stdout and "Invalid: 0" in done.stdout


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
def test_each_profile_names_its_card_and_says_why(
    profile: Path, render: Callable[..., list[Obj]]
) -> None:
    text = profile.read_text(encoding="utf-8")
    assert text.startswith("#"), "a profile starts with a header comment naming the card"
    assert "GiB" in text and "KiB per token" in text, "the header explains the memory numbers"
    values = yaml.safe_load(text)
    assert values["gpu"]["profile"], "preflight needs gpu.profile"
    config = engine_config(render(profile))
    assert config["max-model-len"] == values["model"]["maxModelLen"]


def test_the_12gb_profile_does_not_serve_the_14b_model(render: Callable[..., list[Obj]]) -> None:
    objects = render(REPO_ROOT / "values" / "rtx5070.yaml")
    assert container(objects)["args"][0] == "Qwen/Qwen2.5-Coder-7B-Instruct-GPTQ-Int4"


# --- engine settings ------------------------------------------------------------------------


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


def test_extra_config_cannot_shadow_a_managed_setting(render_error: Callable[..., str]) -> None:
    err = render_error({"model": {"extraConfig": {"max-model-len": 32768}}})
    assert "model.extraConfig.max-model-len" in err and "fix:" in err


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


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (
            {"podLabels": {"app.kubernetes.io/component": "x"}},
            ["podLabels.app.kubernetes.io/component"],
        ),
        (
            {"podLabels": {"app.kubernetes.io/instance": "x"}},
            ["podLabels.app.kubernetes.io/instance"],
        ),
        ({"podLabels": {"app.kubernetes.io/name": "x"}}, ["podLabels.app.kubernetes.io/name"]),
        ({"podAnnotations": {"checksum/config": "x"}}, ["podAnnotations.checksum/config"]),
    ],
    ids=["component", "instance", "name", "checksum"],
)
def test_pod_labels_and_annotations_the_chart_owns_are_refused(
    values: Obj, names: list[str], render_error: Callable[..., str]
) -> None:
    err = render_error(values)
    for name in names:
        assert name in err
    assert "fix: remove" in err and len(err.strip().splitlines()) <= 3


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


def test_schema_refuses_a_misspelt_key_and_a_bad_enum(render_error: Callable[..., str]) -> None:
    assert "maxModelLength" in render_error({"model": {"maxModelLength": 4096}})
    assert "kvCacheDtype" in render_error({"model": {"kvCacheDtype": "int4"}})
    assert "gpuMemoryUtilization" in render_error({"model": {"gpuMemoryUtilization": 1.5}})


# --- download and offline serving -----------------------------------------------------------


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
    token = env_of(container(objects, "download"))["HF_TOKEN"]
    assert token["valueFrom"]["secretKeyRef"] == {"name": "hf-token", "key": "HF_TOKEN"}
    assert "HF_TOKEN" not in env_of(container(objects))


# --- probes ---------------------------------------------------------------------------------


def test_probes_cover_a_slow_first_load(render: Callable[..., list[Obj]]) -> None:
    vllm = container(render())
    startup = vllm["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= STARTUP_BUDGET_S
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert vllm[probe]["httpGet"] == {"path": "/health", "port": "http"}
        # An initial delay would be a guess; the startup probe gates the other two instead.
        assert "initialDelaySeconds" not in vllm[probe]


# --- storage --------------------------------------------------------------------------------


def test_model_cache_claim_is_kept_on_uninstall(render: Callable[..., list[Obj]]) -> None:
    objects = render(CHART / "ci" / "nvidia-values.yaml")
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "archon-model-cache"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    assert claim["spec"]["storageClassName"] == "local-path"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "archon-model-cache"


def test_existing_claim_is_used_and_none_is_created(render: Callable[..., list[Obj]]) -> None:
    objects = render(CHART / "ci" / "existing-claim-values.yaml")
    assert "PersistentVolumeClaim" not in kinds(objects)
    volumes = {v["name"]: v for v in pod_spec(objects)["volumes"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "models"


# --- strategy and impossible combinations ----------------------------------------------------


def test_default_strategy_is_recreate(render: Callable[..., list[Obj]]) -> None:
    assert one(render(), "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    "rolling", [{"maxSurge": 1}, {"maxSurge": "25%"}, None], ids=["count", "percent", "k8s-default"]
)
def test_surge_beyond_the_node_gpus_is_refused(
    rolling: Obj | None, render_error: Callable[..., str]
) -> None:
    strategy: Obj = {"type": "RollingUpdate"}
    if rolling is not None:
        strategy["rollingUpdate"] = rolling
    err = render_error({"strategy": strategy})
    assert (
        "strategy" in err
        and "gpu.nodeCapacity=1" in err
        and "fix: set strategy.type: Recreate" in err
    )
    assert len(err.strip().splitlines()) <= 3, "one message, not a template dump"


@pytest.mark.parametrize(
    "rolling",
    [
        {"maxSurge": 0, "maxUnavailable": 0},
        {"maxSurge": "0%", "maxUnavailable": 0},
        {"maxSurge": 0, "maxUnavailable": "0%"},
    ],
    ids=["counts", "percent-surge", "percent-unavailable"],
)
def test_no_surge_and_no_unavailable_is_refused(
    rolling: Obj, render_error: Callable[..., str]
) -> None:
    err = render_error({"strategy": {"type": "RollingUpdate", "rollingUpdate": rolling}})
    assert "strategy.rollingUpdate.maxSurge=0" in err
    assert "maxUnavailable may not be 0 when maxSurge is 0" in err
    assert "fix: set strategy.rollingUpdate.maxUnavailable: 1" in err
    assert len(err.strip().splitlines()) <= 3, "one message, not a template dump"


@pytest.mark.parametrize("field", ["maxSurge", "maxUnavailable"])
def test_a_percentage_above_100_is_refused(field: str, render_error: Callable[..., str]) -> None:
    rolling = {"maxSurge": 0, "maxUnavailable": 1} | {field: "101%"}
    err = render_error({"strategy": {"type": "RollingUpdate", "rollingUpdate": rolling}})
    assert field in err and "101%" in err


def test_surge_counts_every_instance_archetype(render_error: Callable[..., str]) -> None:
    council = yaml.safe_load((REPO_ROOT / "values" / "council.yaml").read_text())
    surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    err = render_error({**council, "strategy": surge})
    assert "(gpu.count=1 + archetypes[name=roc].instance.gpu.count=1) = 4 GPUs" in err
    assert "gpu.nodeCapacity=2" in err
    assert "fix: set strategy.type: Recreate or raise gpu.nodeCapacity to 4" in err
    assert len(err.strip().splitlines()) <= 3, "one message, not a template dump"


def test_surge_that_fits_the_node_renders(render: Callable[..., list[Obj]]) -> None:
    surge = {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}
    objects = render({**surge, "gpu": {"nodeCapacity": 2}})
    assert one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 1
    no_surge = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    assert one(render({"strategy": no_surge}), "Deployment")["spec"]["strategy"] == no_surge


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"model": {"tensorParallelSize": 2}}, ["model.tensorParallelSize=2", "gpu.count=1"]),
        ({"replicaCount": 2}, ["replicaCount=2", "gpu.nodeCapacity=1"]),
        ({"apiKey": {"enabled": True}}, ["apiKey.enabled", "apiKey.existingSecret"]),
        ({"resources": {"limits": {"nvidia.com/gpu": 1}}}, ["resources.limits.nvidia.com/gpu"]),
    ],
    ids=[
        "tp-vs-count",
        "replicas",
        "api-key-no-secret",
        "gpu-in-resources",
    ],
)
def test_impossible_combinations_fail_with_the_keys_and_a_fix(
    values: Obj, names: list[str], render_error: Callable[..., str]
) -> None:
    err = render_error(values)
    for name in names:
        assert name in err
    assert "fix:" in err


# --- security -------------------------------------------------------------------------------


def test_pods_run_hardened_with_writable_caches(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    spec = pod_spec(objects)
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    account = one(objects, "ServiceAccount")
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


# --- GPU vendor switch ----------------------------------------------------------------------


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


# --- API key, service, ingress --------------------------------------------------------------


def test_api_key_comes_from_a_secret(render: Callable[..., list[Obj]]) -> None:
    assert "VLLM_API_KEY" not in env_of(container(render()))
    objects = render(CHART / "ci" / "api-key-values.yaml")
    key = env_of(container(objects))["VLLM_API_KEY"]
    assert "value" not in key
    assert key["valueFrom"]["secretKeyRef"] == {"name": "archon-api-key", "key": "api-key"}
    test_pod = one(objects, "Pod")
    test_env = env_of(test_pod["spec"]["containers"][0])
    assert test_env["ARCHON_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "archon-api-key"


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


def test_ingress_streams_and_terminates_tls(render: Callable[..., list[Obj]]) -> None:
    objects = render(CHART / "ci" / "ingress-tls-values.yaml")
    ingress = one(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-send-timeout"] == "3600"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "64m"
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"hosts": ["archon.home.local"], "secretName": "archon-tls"}]
    backend = spec["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {
        "name": one(objects, "Service")["metadata"]["name"],
        "port": {"name": "http"},
    }
    assert "Ingress" not in kinds(render())


# --- names, helm test, NOTES ----------------------------------------------------------------


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


def test_helm_test_pods_pull_and_schedule_like_the_server(
    render: Callable[..., list[Obj]],
) -> None:
    placement: Obj = {
        "imagePullSecrets": [{"name": "registry"}],
        "nodeSelector": {"gpu": "rtx5080"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    }
    archetypes = {"archetypes": [{"name": "maat", "mode": "prompt"}]}
    pods = [o for o in render({**placement, **archetypes}) if o["kind"] == "Pod"]
    assert sorted(p["metadata"]["name"] for p in pods) == [
        "archon-test-api",
        "archon-test-archetypes",
    ]
    for pod in pods:
        for key, value in placement.items():
            assert pod["spec"][key] == value, (pod["metadata"]["name"], key)
    plain = one(render(), "Pod")["spec"]
    assert not {"imagePullSecrets", "nodeSelector", "tolerations"} & plain.keys()


def test_helm_test_pod_calls_the_api_hardened_and_bounded(render: Callable[..., list[Obj]]) -> None:
    objects = render()
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    test = pod["spec"]["containers"][0]
    script = test["command"][-1]
    assert "/v1/models" in script and "/v1/chat/completions" in script
    assert not test["image"].endswith(":latest") and ":" in test["image"]
    assert test["resources"]["limits"]["memory"] and test["resources"]["limits"]["cpu"]
    assert test["securityContext"]["readOnlyRootFilesystem"] is True
    assert test["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    env = env_of(test)
    assert env["ARCHON_SERVICE"]["value"] == one(objects, "Service")["metadata"]["name"]
    assert env["ARCHON_MODEL"]["value"] == "qwen2.5-coder-14b"
    assert "Pod" not in kinds(render({"test": {"enabled": False}}))


def _notes(
    run_helm: Callable[..., subprocess.CompletedProcess[str]], values: Obj | Path | None
) -> str:
    done = run_helm(
        ["install", "archon", str(CHART), "--dry-run=client", "--namespace", "ai"], values
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:", 1)[1]


def test_notes_warn_first_then_summary_then_commands(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    notes = _notes(run_helm, None).strip().splitlines()
    assert notes[0].startswith("WARNING: persistence.storageClassName")
    summary = next(i for i, line in enumerate(notes) if line.startswith("archon: "))
    assert all(not line.startswith("WARNING") for line in notes[summary:])
    assert "Qwen/Qwen2.5-Coder-14B-Instruct-GPTQ-Int4" in notes[summary]
    assert "NVIDIA" in notes[summary] and "8192 tokens" in notes[summary]
    text = "\n".join(notes)
    assert "kubectl --namespace ai port-forward svc/archon-server 8000:8000" in text
    assert "Authorization" not in text


def test_notes_with_api_key_and_ingress(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    keyed = _notes(run_helm, CHART / "ci" / "api-key-values.yaml")
    assert "Authorization: Bearer $ARCHON_API_KEY" in keyed
    assert "get secret archon-api-key" in keyed
    assert "WARNING: persistence" not in keyed, "a named StorageClass needs no warning"
    open_ingress = _notes(run_helm, {"ingress": {"enabled": True}})
    assert "WARNING: ingress.enabled=true with apiKey.enabled=false" in open_ingress


def test_notes_use_the_gateway_key_and_warn_about_an_open_gateway(
    run_helm: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    maat = [{"name": "maat", "mode": "prompt"}]
    tls = {"enabled": True, "tlsSecretName": "archon-tls"}
    # The gateway reuses the API key's Secret when it has none of its own.
    reused = _notes(
        run_helm,
        {"apiKey": {"enabled": True, "existingSecret": "api"}, "ingress": tls, "archetypes": maat},
    )
    export = "export ARCHON_GATEWAY_KEY=$(kubectl --namespace ai get secret api"
    assert f"{export} -o jsonpath='{{.data.api-key}}'" in reused
    ingress_curl = (
        'https://archon.home.local/v1/models -H "Authorization: Bearer $ARCHON_GATEWAY_KEY"'
    )
    assert ingress_curl in reused, "the Ingress points at the gateway: send the gateway key"
    assert "--api-key-env ARCHON_GATEWAY_KEY" in reused and "WARNING: ingress" not in reused
    # Its own key, the API open: the Ingress (the gateway) is keyed, so no warning.
    own = _notes(
        run_helm,
        {"gateway": {"masterKey": {"existingSecret": "gw"}}, "ingress": tls, "archetypes": maat},
    )
    assert "get secret gw -o jsonpath='{.data.master-key}'" in own
    assert ingress_curl in own and "WARNING: ingress" not in own
    # No key anywhere: the gateway is open to whoever reaches the Ingress.
    open_gateway = _notes(run_helm, {"gateway": {"enabled": True}, "ingress": {"enabled": True}})
    warning = "WARNING: ingress.enabled=true and the gateway (the Ingress backend) has no key"
    assert warning in open_gateway
    assert "ARCHON_GATEWAY_KEY" not in open_gateway
    assert "curl -s http://archon.home.local/v1/models\n" in open_gateway
