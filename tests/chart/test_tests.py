"""templates/tests: the `helm test` pods, and the same checks as ArgoCD PostSync Jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .helpers import (
    ARCHETYPES_SCENARIO,
    CHART,
    PROFILES,
    PROMPT,
    SCENARIOS,
    Obj,
    annotations_of,
    env_of,
    kinds,
    one,
    rendered,
)

pytestmark = pytest.mark.slow


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


def test_helm_test_calls_every_archetype_once(toolchain: dict[str, Path]) -> None:
    objects = rendered(files=(ARCHETYPES_SCENARIO,))
    pod = one(objects, "Pod", "-test-archetypes")
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["ARCHON_ARCHETYPES"]["value"].split() == [
        "maat",
        "verdict",
        "lilith",
        "thoth",
        "roc",
    ]
    assert env["ARCHON_MODEL"]["value"] == "qwen2.5-coder-14b", "the base model is called too"
    assert env["ARCHON_GATEWAY"]["value"] == "archon-gateway"
    script = pod["spec"]["containers"][0]["command"][-1]
    assert "/v1/models" in script and "/v1/chat/completions" in script
    assert "for name in ${ARCHON_MODEL} ${ARCHON_ARCHETYPES}" in script
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


# --- the same checks as ArgoCD PostSync Jobs --------------------------------------------------

POST_SYNC: Obj = {"test": {"argocdPostSync": {"enabled": True}}}


def test_helm_users_get_no_job_by_default(render: Callable[..., list[Obj]]) -> None:
    argocd = CHART / "ci" / "argocd-values.yaml"
    for values in [*SCENARIOS, *PROFILES]:
        if values != argocd:
            assert not _post_sync_jobs(render(values)), values.name
    jobs = [o["metadata"]["name"] for o in _post_sync_jobs(render(argocd))]
    assert sorted(jobs) == ["archon-test-api", "archon-test-archetypes"]


def _post_sync_jobs(objects: list[Obj]) -> list[Obj]:
    """The test Jobs (the API key's hook Job is a Helm pre-install hook of its own)."""
    return [o for o in objects if o["kind"] == "Job" and _component(o) == "test"]


def _component(obj: Obj) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


@pytest.mark.parametrize(
    ("values", "names"),
    [
        (POST_SYNC, ["archon-test-api"]),
        (
            {**POST_SYNC, "archetypes": [PROMPT]},
            ["archon-test-api", "archon-test-archetypes"],
        ),
    ],
    ids=["server", "archetypes"],
)
def test_post_sync_jobs_run_the_helm_test_pod_specs(
    values: Obj, names: list[str], render: Callable[..., list[Obj]]
) -> None:
    objects = render(values)
    jobs = {o["metadata"]["name"]: o for o in _post_sync_jobs(objects)}
    pods = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Pod"}
    assert sorted(jobs) == sorted(pods) == names
    for name, job in jobs.items():
        hooks = {k: v for k, v in annotations_of(job).items() if "/hook" in k}
        assert hooks == {
            "argocd.argoproj.io/hook": "PostSync",
            # A Job's pod template is immutable: the old hook goes before the new one is created.
            "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation,HookSucceeded",
        }, "no helm.sh/hook: ArgoCD would ignore it on this Job anyway"
        assert job["spec"]["template"]["spec"] == pods[name]["spec"], name
        assert job["spec"]["backoffLimit"] == 0
        assert job["spec"]["activeDeadlineSeconds"] == 900
        assert job["spec"]["template"]["metadata"]["labels"] == job["metadata"]["labels"]
        # helm test keeps working for helm users: the Pod stays a test hook.
        assert annotations_of(pods[name])["helm.sh/hook"] == "test"


def test_post_sync_jobs_follow_the_test_switch_and_deadline(
    render: Callable[..., list[Obj]],
) -> None:
    bounded = {"test": {"argocdPostSync": {"enabled": True, "activeDeadlineSeconds": 120}}}
    assert one(render(bounded), "Job", "-test-api")["spec"]["activeDeadlineSeconds"] == 120
    off = {"test": {"enabled": False, "argocdPostSync": {"enabled": True}}}
    assert not [o for o in render(off) if _component(o) == "test"]


def test_the_only_helm_hooks_are_the_tests_and_the_api_key(
    render: Callable[..., list[Obj]],
) -> None:
    # ArgoCD reads a resource's Helm hook only when it has no ArgoCD hook of its own: the
    # PostSync Jobs carry none, and the API key's pre-install/pre-upgrade hooks (ArgoCD runs them
    # as PreSync) carry no ArgoCD one.
    for values in [*SCENARIOS, *PROFILES]:
        for obj in render(values):
            hook = annotations_of(obj).get("helm.sh/hook")
            argocd = annotations_of(obj).get("argocd.argoproj.io/hook")
            expected = "pre-install,pre-upgrade" if _component(obj) == "api-key" else "test"
            assert hook in (None, expected), (values.name, obj["metadata"]["name"], hook)
            assert not (hook and argocd), "one resource, one hook system"
