"""templates/_validate.tpl and the schema: values that render but can never run are refused with
one line naming the keys and the fix."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from .helpers import CHART, PROFILES, REPO_ROOT, SCENARIOS, Obj, one

pytestmark = pytest.mark.slow


def test_extra_config_cannot_shadow_a_managed_setting(render_error: Callable[..., str]) -> None:
    err = render_error({"model": {"extraConfig": {"max-model-len": 32768}}})
    assert "model.extraConfig.max-model-len" in err and "fix:" in err


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--max-model-len", "131072"], "max-model-len"),
        (["--model=other/model"], "model"),
        (["--gpu_memory_utilization", "0.99"], "gpu-memory-utilization"),
    ],
    ids=["max-model-len", "model", "underscore-spelling"],
)
def test_extra_args_cannot_shadow_a_managed_setting(
    args: list[str], name: str, render_error: Callable[..., str]
) -> None:
    # vLLM reads extraArgs after the config file: a managed flag there would win over the value
    # the preflight checked.
    err = render_error({"model": {"extraArgs": args}})
    assert f"model.extraArgs.{name} is managed by the chart" in err
    assert err.count("fix:") == 1


@pytest.mark.parametrize("name", ["HF_HUB_OFFLINE", "HF_HOME", "VLLM_NO_USAGE_STATS"])
def test_extra_env_cannot_override_the_chart_environment(
    name: str, render_error: Callable[..., str]
) -> None:
    err = render_error({"extraEnv": [{"name": name, "value": "0"}]})
    assert f"extraEnv.{name} is set but the chart sets {name}" in err and "fix: remove" in err


@pytest.mark.parametrize("key", ["model", "gpu", "image", "probes"])
def test_a_null_map_the_chart_needs_is_refused_by_the_schema(
    key: str, render_error: Callable[..., str]
) -> None:
    # helm drops a key set to null; the schema requires what the templates read.
    err = render_error({key: None})
    assert "missing" in err and key in err


def test_fullname_override_must_be_a_dns_label(render_error: Callable[..., str]) -> None:
    assert "fullnameOverride" in render_error({"fullnameOverride": "Bad_Name"})


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


def test_schema_refuses_a_misspelt_key_and_a_bad_enum(render_error: Callable[..., str]) -> None:
    assert "maxModelLength" in render_error({"model": {"maxModelLength": 4096}})
    assert "kvCacheDtype" in render_error({"model": {"kvCacheDtype": "int4"}})
    assert "gpuMemoryUtilization" in render_error({"model": {"gpuMemoryUtilization": 1.5}})


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
    assert (
        "(gpu.count=1 + archetypes[name=roc].instance.gpu.count=1"
        " + archetypes[name=embed].instance.gpu.count=1) = 6 GPUs"
    ) in err
    assert "gpu.nodeCapacity=3" in err
    assert "fix: set strategy.type: Recreate or raise gpu.nodeCapacity to 6" in err
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
        (
            {"apiKey": {"enabled": False}, "ingress": {"enabled": True}},
            ["ingress.enabled=true", "apiKey.enabled=false", "apiKey.allowUnauthenticatedExposure"],
        ),
        ({"resources": {"limits": {"nvidia.com/gpu": 1}}}, ["resources.limits.nvidia.com/gpu"]),
    ],
    ids=[
        "tp-vs-count",
        "replicas",
        "open-ingress",
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


@pytest.mark.parametrize(
    "model",
    [
        {"extraArgs": ["--pipeline-parallel-size", "2"]},
        {"extraArgs": ["-pp=2"]},
        {"extraConfig": {"data-parallel-size": 2}},
        {"tensorParallelSize": 2, "extraArgs": ["--pipeline_parallel_size", "2"], "gpu": 4},
    ],
    ids=["pp-long", "pp-short", "dp-config", "tp-times-pp"],
)
def test_pipeline_and_data_parallel_count_their_gpus(
    model: Obj, render: Callable[..., list[Obj]], render_error: Callable[..., str]
) -> None:
    # vLLM starts one worker per GPU: tensor x pipeline x data parallel (vllm/config/parallel.py
    # world_size = pipeline_parallel_size * tensor_parallel_size, one engine per data-parallel rank)
    gpus = model.pop("gpu", 2)
    values = {"gpu": {"count": gpus, "nodeCapacity": gpus}, "model": model}
    deployment = one(render(values), "Deployment")
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert str(limits["nvidia.com/gpu"]) == str(gpus)
    err = render_error({"gpu": {"count": gpus + 1, "nodeCapacity": gpus + 1}, "model": model})
    assert f"= {gpus} GPUs but gpu.count={gpus + 1}" in err
    assert f"fix: set gpu.count to {gpus}" in err


def test_a_parallel_size_that_is_not_a_number_is_refused(render_error: Callable[..., str]) -> None:
    err = render_error({"gpu": {"count": 2}, "model": {"extraArgs": ["-dp", "two"]}})
    assert "data-parallel-size=two" in err and "fix: give each as a number" in err


def _surge_pods(strategy: Obj, replicas: int) -> int:
    """Extra pods a rollout adds, rounded up from a percentage like the Deployment controller."""
    if strategy["type"] != "RollingUpdate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str):
        return math.ceil(replicas * int(surge.rstrip("%")) / 100)
    return int(surge)


@pytest.mark.parametrize("values_file", SCENARIOS + PROFILES, ids=lambda p: p.name)
def test_every_gpu_rollout_fits_the_declared_node(
    values_file: Path, render: Callable[..., list[Obj]]
) -> None:
    """Each GPU Deployment is Recreate, or its surge pods fit gpu.nodeCapacity while the old pods
    still hold their GPUs (they all roll at once)."""
    declared = (yaml.safe_load(values_file.read_text()) or {}).get("gpu", {})
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["gpu"]
    capacity = int(declared.get("nodeCapacity", defaults["nodeCapacity"]))
    during_rollout = 0
    gpu_deployments = 0
    for deployment in [o for o in render(values_file) if o["kind"] == "Deployment"]:
        limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        gpus = sum(int(v) for k, v in limits.items() if k.endswith("/gpu"))
        if not gpus:
            continue  # the gateway
        gpu_deployments += 1
        spec = deployment["spec"]
        strategy = spec["strategy"]
        if strategy["type"] == "Recreate":
            during_rollout += spec["replicas"] * gpus
        else:
            during_rollout += (spec["replicas"] + _surge_pods(strategy, spec["replicas"])) * gpus
    assert gpu_deployments >= 1
    assert during_rollout <= capacity, (
        f"{during_rollout} GPUs during a rollout, node has {capacity}"
    )


def test_a_progress_deadline_inside_the_startup_budget_is_refused(
    render_error: Callable[..., str],
) -> None:
    err = render_error({"progressDeadlineSeconds": 1800})
    assert "progressDeadlineSeconds=1800 but the startup probe allows 1800 s" in err
    assert "fix: set progressDeadlineSeconds above 1800" in err
    assert len(err.strip().splitlines()) <= 3
    slow = {"probes": {"startup": {"failureThreshold": 400}}}
    assert "above 4000" in render_error(slow), "a longer probe needs a longer deadline"
