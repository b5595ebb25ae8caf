"""Shared fixtures: the real toolchain, a tiny chart for tool-level tests, and a CLI runner."""

from __future__ import annotations

import io
import json
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from archon.cli.main import main

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def _run(*argv: str) -> CliResult:
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return _run


@pytest.fixture
def offline_hub_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty Archon cache and no Hub: the cache of Hub reads comes before the catalog, so a
    developer's earlier --refresh must not change a test's figures, and no test may reach the
    real Hub."""
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path_factory.mktemp("archon-cache")))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def toolchain() -> dict[str, Path]:
    """The real pinned helm and kubeconform (built once per machine, then cached)."""
    from archon.toolchain import ensure_all, ensure_schemas

    tools = ensure_all(["helm", "kubeconform"])
    tools["schemas"] = ensure_schemas()
    return tools


TINY_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "greeting": {"type": "string"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 3},
        "vendor": {"enum": ["nvidia", "amd"]},
        "model": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "maxModelLen": {"type": "integer", "minimum": 1},
                "gpuMemoryUtilization": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 1,
                },
            },
        },
        "tolerations": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"key": {"type": "string"}, "effect": {"type": "string"}},
            },
        },
    },
}


@pytest.fixture
def tiny_chart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A minimal chart with a strict schema, so tool-level tests do not depend on ours."""
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "values.yaml").write_text(
        textwrap.dedent(
            """\
            greeting: hello
            replicas: 1
            vendor: nvidia
            model:
              name: demo
              maxModelLen: 4096
              gpuMemoryUtilization: 0.9
            tolerations: []
            """
        )
    )
    (chart / "values.schema.json").write_text(json.dumps(TINY_SCHEMA))
    (chart / "templates" / "configmap.yaml").write_text(
        textwrap.dedent(
            """\
            {{- if gt (int .Values.replicas) 2 }}
            {{- fail "replicas: more than 2 needs a second GPU; fix: set replicas <= 2" }}
            {{- end }}
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-tiny
            data:
              greeting: {{ .Values.greeting | quote }}
              model: {{ .Values.model.name | quote }}
            """
        )
    )
    monkeypatch.setenv("ARCHON_CHART_DIR", str(chart))
    from archon import schema

    schema._schema.cache_clear()
    return chart


DEAD_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: ctx, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: ctx
"""


@pytest.fixture
def dead_cluster(tmp_path: Path) -> Path:
    """A kubeconfig whose API server is a closed port on loopback."""
    path = tmp_path / "kubeconfig"
    path.write_text(DEAD_KUBECONFIG)
    return path


# --- the real local control plane, one per test session ----------------------------------------


CLUSTER_TOOLS = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "kwokctl",
    "helm",
]
# Its own cluster per session (pid: two sessions at once do not share one); a user's
# `archon cluster up` is left alone.
TEST_CLUSTER = f"archon-test-{os.getpid()}"


def _cluster_built() -> bool:
    from archon.toolchain import load_specs
    from archon.toolchain.install import is_installed

    specs = load_specs()
    return all(is_installed(specs[name]) for name in CLUSTER_TOOLS)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Path]:
    """The kubeconfig of a fresh local cluster shared by every integration file of the session.

    Skipped when the cluster binaries are not built, except in CI (CI=true), where `up` builds
    them. Deleted at the end, also after a failed `up`: no control plane is left running."""
    from archon.cluster.lifecycle import down, up

    if not _cluster_built() and os.environ.get("CI") != "true":
        pytest.skip("cluster binaries not built: run `archon toolchain install`")
    previous = os.environ.get("ARCHON_CLUSTER")
    os.environ["ARCHON_CLUSTER"] = TEST_CLUSTER
    try:
        down(out=io.StringIO())  # nothing left from an earlier session of the same pid
        info = up(None, out=io.StringIO())
        assert info.running
        yield info.kubeconfig
    finally:
        down(out=io.StringIO())
        if previous is None:
            os.environ.pop("ARCHON_CLUSTER", None)
        else:
            os.environ["ARCHON_CLUSTER"] = previous


@pytest.fixture(scope="session")
def kube(cluster: Path) -> Any:
    from archon.kube.client import api_client
    from archon.kube.rest import Kube

    return Kube(api_client(cluster))


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kube: Any) -> Iterator[str]:
    """A namespace per test, deleted afterwards so its pods give their GPU back."""
    from cluster_support import drop_namespace

    name = "it-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:40]
    yield name
    drop_namespace(kube, name)
