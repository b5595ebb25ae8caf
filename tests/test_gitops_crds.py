"""archon.gitops.crds: the pinned upstream CRDs, read from their Go modules, and their schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archon.errors import ToolchainError, UsageError
from archon.gitops import crds


def test_strict_where_the_crd_lists_fields_open_where_it_keeps_unknown_ones() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "values": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "open": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"known": {"type": "string"}},
                    },
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                    },
                    "either": {"anyOf": [{"type": "object", "properties": {"a": {}}}]},
                },
            }
        },
    }
    out = crds.to_json_schema(schema)
    spec = out["properties"]["spec"]
    assert out["additionalProperties"] is False  # the root too: an unknown top-level field fails
    assert spec["additionalProperties"] is False
    assert "additionalProperties" not in spec["properties"]["values"]
    assert "additionalProperties" not in spec["properties"]["open"]
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert spec["properties"]["items"]["items"]["additionalProperties"] is False
    assert spec["properties"]["either"]["anyOf"][0]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the input is left alone


def test_nullable_int_or_string_and_fields_named_like_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "maybe": {"type": "string", "nullable": True},
            "port": {"format": "int-or-string"},
            # fields whose names are schema keywords are fields, not keywords
            "properties": {"type": "string"},
            "nullable": {"type": "boolean"},
        },
    }
    props = crds.to_json_schema(schema)["properties"]
    assert props["maybe"] == {"type": ["string", "null"]}
    assert props["port"] == {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    assert props["properties"] == {"type": "string"}
    assert props["nullable"] == {"type": "boolean"}


def test_schema_files_follow_kubeconforms_layout() -> None:
    doc = {
        "spec": {
            "group": "tekton.dev",
            "names": {"kind": "PipelineRun"},
            "versions": [
                {"name": "v1beta1", "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1alpha1"},  # no schema: nothing to write
            ],
        }
    }
    assert sorted(crds.schema_files(doc)) == [
        "tekton.dev/pipelinerun_v1.json",
        "tekton.dev/pipelinerun_v1beta1.json",
    ]
    location = crds.crd_schema_location()
    assert location.endswith("/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")


def test_pins_name_modules_and_exact_versions() -> None:
    sets = crds.crd_sets()
    assert set(sets) == {"argocd", "prometheus-operator", "tekton"}
    assert sets["argocd"].module == "github.com/argoproj/argo-cd/v3"
    for pins in sets.values():
        assert pins.version.startswith("v") and pins.version.count(".") == 2
        assert pins.paths
    with pytest.raises(UsageError) as info:
        crds.crd_set("flux")
    assert (
        info.value.line()
        == "unknown CRD set 'flux'; fix: use one of: argocd, prometheus-operator, tekton"
    )


def test_a_module_the_proxy_cannot_give_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "off")  # no network: the module is not in the cache
    crds.module_dir.cache_clear()
    with pytest.raises(ToolchainError) as info:
        crds.module_dir("github.com/argoproj/argo-cd/v3", "v3.0.0-archon-test")
    assert "go mod download github.com/argoproj/argo-cd/v3@v3.0.0-archon-test failed" in str(
        info.value
    )
    assert "\n" not in info.value.line()
    assert "GOPROXY" in info.value.fix


def test_no_go_command_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    crds.module_dir.cache_clear()
    with pytest.raises(ToolchainError, match="the go command is not installed"):
        crds.module_dir("github.com/tektoncd/pipeline", "v1.0.0")
    crds.module_dir.cache_clear()


# --- the real modules -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "names"),
    [
        (
            "argocd",
            {
                "applications.argoproj.io",
                "applicationsets.argoproj.io",
                "appprojects.argoproj.io",
            },
        ),
        (
            "tekton",
            {
                "tasks.tekton.dev",
                "pipelines.tekton.dev",
                "taskruns.tekton.dev",
                "pipelineruns.tekton.dev",
                "stepactions.tekton.dev",
                "customruns.tekton.dev",
            },
        ),
    ],
)
def test_crd_documents_come_from_the_pinned_module(which: str, names: set[str]) -> None:
    docs = crds.crd_documents(which)
    assert {d["metadata"]["name"] for d in docs} == names
    assert all(d["apiVersion"] == "apiextensions.k8s.io/v1" for d in docs)
    pins = crds.crd_set(which)
    folder = crds.module_dir(pins.module, pins.version)
    assert folder.name == f"{pins.module.rsplit('/', 1)[-1]}@{pins.version}"
    docs[0]["metadata"]["name"] = "changed"  # a copy: the next caller gets the original
    assert "changed" not in {d["metadata"]["name"] for d in crds.crd_documents(which)}


@pytest.mark.slow
def test_schemas_are_written_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path))
    root = crds.ensure_crd_schemas()
    assert root.is_relative_to(tmp_path / "schemas" / "crds")
    files = {str(p.relative_to(root)) for p in root.rglob("*.json")}
    assert {
        "argoproj.io/application_v1alpha1.json",
        "argoproj.io/applicationset_v1alpha1.json",
        "argoproj.io/appproject_v1alpha1.json",
        "tekton.dev/task_v1.json",
        "tekton.dev/pipeline_v1.json",
        "tekton.dev/pipelinerun_v1.json",
        "tekton.dev/taskrun_v1.json",
        "tekton.dev/stepaction_v1beta1.json",
        "tekton.dev/customrun_v1beta1.json",
    } <= files
    app: dict[str, Any] = json.loads((root / "argoproj.io/application_v1alpha1.json").read_text())
    helm = app["properties"]["spec"]["properties"]["source"]["properties"]["helm"]
    assert helm["additionalProperties"] is False
    assert "additionalProperties" not in helm["properties"]["valuesObject"]
    stamp = root / ".archon-ok"
    before = stamp.stat().st_mtime_ns
    assert crds.ensure_crd_schemas() == root
    assert stamp.stat().st_mtime_ns == before
