"""Shared fixtures: the real toolchain, a tiny chart for tool-level tests, and a CLI runner."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
