"""What an unauthenticated request from outside the namespace reaches, read from the rendered
objects (archon.security.exposure, the figure `archon bench security` reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .helpers import CHART, rendered


def _reach(*files: Path, **values: Any) -> list[str]:
    from archon.security.exposure import unauthenticated_reach

    return [e.line() for e in unauthenticated_reach(rendered(files=files, **values))]


def test_nothing_is_reachable_without_a_key_by_default(toolchain: Any) -> None:
    assert _reach() == []
    assert _reach(CHART / "ci" / "archetypes-values.yaml") == []


def test_each_opening_is_named(toolchain: Any) -> None:
    assert _reach(networkPolicy={"enabled": False}) == [
        "any pod of the cluster -> archon-server: every route but /v1"
    ]
    assert _reach(metrics={"serviceMonitor": {"enabled": True}}) == [
        "namespace monitoring -> archon-server: every route but /v1"
    ]
    lan = {"enabled": False, "allowUnauthenticatedExposure": True}
    opened = _reach(apiKey=lan, ingress={"enabled": True}, service={"type": "NodePort"})
    assert opened == [
        "namespace ingress-nginx -> archon-server: every route, /v1 included",
        "NodePort (outside the cluster) -> archon-server: every route, /v1 included",
        "Ingress archon.home.local/v1 -> archon-server: /v1* without a key",
    ]


def test_an_open_gateway_is_reachable_but_a_keyed_one_is_not(toolchain: Any) -> None:
    maat = {"name": "maat", "mode": "prompt"}
    keyed = _reach(archetypes=[maat], ingress={"enabled": True})
    assert keyed == []
    lan = {"enabled": False, "allowUnauthenticatedExposure": True}
    opened = _reach(archetypes=[maat], ingress={"enabled": True}, apiKey=lan)
    assert "namespace ingress-nginx -> archon-gateway: every route" in opened
    assert not [line for line in opened if "-> archon-server" in line], "vLLM stays inside"


@pytest.mark.slow
def test_the_benchmark_reports_every_scenario_offline(run_cli: Any) -> None:
    import json

    done = run_cli("bench", "security", "--no-pod-security", "--output", "json")
    report = json.loads(done.out)
    assert done.code == 0, done.err
    assert report["met"] is True
    assert report["kube_score_findings"] == report["checkov_findings"] == 0
    assert report["defaults_unauthenticated_reach"] == []
    assert len(report["per_scenario"]) == len(list((CHART / "ci").glob("*-values.yaml"))) + 6
