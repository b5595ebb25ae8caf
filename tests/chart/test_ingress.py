"""templates/server/ingress.yaml: the `helm create` value layout, routing to the gateway or the
server, TLS, and the old flat keys refused with their new place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import CHART, PROMPT, Obj, annotations_of, kinds, one

pytestmark = pytest.mark.slow


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


def _routes(ingress: Obj) -> list[tuple[str, str, str, str]]:
    """(host, path, pathType, backend Service) of every rule path."""
    return [
        (rule["host"], p["path"], p["pathType"], p["backend"]["service"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    ]


def test_the_scenario_routes_every_host_and_path_to_the_server(
    render: Callable[..., list[Obj]],
) -> None:
    objects = render(CHART / "ci" / "ingress-tls-values.yaml")
    ingress = one(objects, "Ingress")
    assert _routes(ingress) == [
        ("archon.home.local", "/v1", "Prefix", "archon-server"),
        ("llm.home.local", "/v1", "Prefix", "archon-server"),
    ]
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["port"] == {"name": "http"}


HOSTS: Obj = {
    "enabled": True,
    "className": "",
    "hosts": [
        {
            "host": "a.home.local",
            "paths": [
                {"path": "/", "pathType": "Prefix"},
                {"path": "/v1/models", "pathType": "Exact"},
            ],
        },
        {"host": "b.home.local", "paths": [{"path": "/v1", "pathType": "ImplementationSpecific"}]},
    ],
    "tls": [
        {"secretName": "a-tls", "hosts": ["a.home.local"]},
        {"secretName": "b-tls", "hosts": ["b.home.local", "a.home.local"]},
    ],
}


def test_every_path_goes_to_the_gateway_when_it_runs(render: Callable[..., list[Obj]]) -> None:
    backend = "archon-gateway"
    ingress = one(render({"ingress": HOSTS, "archetypes": [PROMPT]}), "Ingress")
    assert _routes(ingress) == [
        ("a.home.local", "/", "Prefix", backend),
        ("a.home.local", "/v1/models", "Exact", backend),
        ("b.home.local", "/v1", "ImplementationSpecific", backend),
    ]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["a.home.local"], "secretName": "a-tls"},
        {"hosts": ["b.home.local", "a.home.local"], "secretName": "b-tls"},
    ]
    assert "ingressClassName" not in ingress["spec"], '"" leaves the cluster default class'


def test_own_annotations_join_the_defaults_and_the_sync_wave(
    render: Callable[..., list[Obj]],
) -> None:
    # helm merges a values map into the default one; null removes a default key.
    own = {
        "cert-manager.io/cluster-issuer": "home",
        "nginx.ingress.kubernetes.io/proxy-body-size": None,
    }
    ingress = one(render({"ingress": {"enabled": True, "annotations": own}}), "Ingress")
    assert annotations_of(ingress) == {
        "cert-manager.io/cluster-issuer": "home",
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
        "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
        "nginx.ingress.kubernetes.io/proxy-buffering": "off",
        "argocd.argoproj.io/sync-wave": "1",
    }
    moved = {"argocd.argoproj.io/sync-wave": "5"}
    ingress = one(render({"ingress": {"enabled": True, "annotations": moved}}), "Ingress")
    assert annotations_of(ingress)["argocd.argoproj.io/sync-wave"] == "5", "the user's value wins"


@pytest.mark.parametrize(
    ("ingress", "words"),
    [
        ({"enabled": True, "hosts": []}, ["ingress.enabled=true but ingress.hosts is empty"]),
        (
            {"enabled": True, "tls": [{"secretName": "x", "hosts": ["other.home.local"]}]},
            [
                "ingress.tls[0].hosts[0]=other.home.local is not a host of ingress.hosts",
                "(archon.home.local)",
            ],
        ),
    ],
    ids=["no-hosts", "tls-host-without-rule"],
)
def test_an_ingress_that_routes_nothing_is_refused(
    ingress: Obj, words: list[str], render_error: Callable[..., str]
) -> None:
    err = render_error({"ingress": ingress})
    for word in words:
        assert word in err
    assert "fix:" in err and len(err.strip().splitlines()) <= 3


def test_a_disabled_ingress_needs_no_hosts(render: Callable[..., list[Obj]]) -> None:
    assert "Ingress" not in kinds(render({"ingress": {"enabled": False, "hosts": []}}))


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"host": "a.home.local"}, "paths"),
        ({"host": "a.home.local", "paths": []}, "paths"),
        ({"host": "a.home.local", "paths": [{"path": "/"}]}, "pathType"),
        ({"host": "a.home.local", "paths": [{"path": "v1", "pathType": "Prefix"}]}, "path"),
        ({"host": "A_b", "paths": [{"path": "/", "pathType": "Prefix"}]}, "host"),
    ],
    ids=["no-paths", "empty-paths", "no-path-type", "relative-path", "bad-host"],
)
def test_the_schema_checks_each_host_entry(
    entry: Obj, key: str, render_error: Callable[..., str]
) -> None:
    assert key in render_error({"ingress": {"enabled": True, "hosts": [entry]}})


# --- the keys of the earlier flat layout ------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ({"host": "a.home.local"}, "hosts[].host"),
        ({"path": "/"}, "hosts[].paths[].path"),
        ({"pathType": "Prefix"}, "hosts[].paths[].pathType"),
        ({"tlsSecretName": "archon-tls"}, "tls[].secretName"),
    ],
    ids=["host", "path", "pathType", "tlsSecretName"],
)
def test_lint_names_where_an_old_ingress_key_went(
    old: Obj, new: str, tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    values = tmp_path / "old.yaml"
    values.write_text(yaml.safe_dump({"ingress": {"enabled": True, **old}}), encoding="utf-8")
    done = run_cli("lint", str(values))
    assert done.code == 1
    lines = done.out.strip().splitlines() + done.err.strip().splitlines()
    (line,) = [line for line in lines if not line.startswith("WARN ")]  # model.revision: main
    (key,) = old
    assert f"ingress.{key}: unknown key '{key}'" in line
    assert f"did you mean '{new}'?" in line


def test_helm_refuses_the_old_keys_too(render_error: Callable[..., str]) -> None:
    err = render_error({"ingress": {"enabled": True, "host": "a.home.local"}})
    assert "host" in err and "additional properties" in err.lower()
