"""templates/cache: the model-cache claim outlives the release, under helm and under ArgoCD."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .helpers import (
    CHART,
    SCENARIOS,
    Obj,
    annotations_of,
    kinds,
    one,
    pod_spec,
)

pytestmark = pytest.mark.slow


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


def test_argocd_keeps_the_claim_too(render: Callable[..., list[Obj]]) -> None:
    # ArgoCD ignores helm.sh/resource-policy: only its own sync options keep the claim when the
    # Application is deleted (Delete=false) or the claim leaves the chart (Prune=false).
    claim = one(render(CHART / "ci" / "nvidia-values.yaml"), "PersistentVolumeClaim")
    assert annotations_of(claim) == {
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Delete=false,Prune=false",
        "argocd.argoproj.io/sync-wave": "0",
    }


def test_own_claim_annotations_are_added_and_may_replace_the_charts(
    render: Callable[..., list[Obj]],
) -> None:
    own = {"backup.example.com/skip": "true", "argocd.argoproj.io/sync-options": "Prune=false"}
    claim = one(render({"persistence": {"annotations": own}}), "PersistentVolumeClaim")
    assert annotations_of(claim) == {
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Prune=false",
        "argocd.argoproj.io/sync-wave": "0",
        "backup.example.com/skip": "true",
    }


def test_every_claim_the_chart_renders_is_kept_by_helm_and_argocd(
    render: Callable[..., list[Obj]],
) -> None:
    for scenario in SCENARIOS:
        for claim in [o for o in render(scenario) if o["kind"] == "PersistentVolumeClaim"]:
            own = annotations_of(claim)
            assert own["helm.sh/resource-policy"] == "keep", scenario.name
            options = own["argocd.argoproj.io/sync-options"].split(",")
            assert {"Delete=false", "Prune=false"} <= set(options), scenario.name
