"""kubeconform -strict with the offline schemas: real tool, real schemas."""

import textwrap
from pathlib import Path

import pytest

from archon.validate import validate_manifest

pytestmark = pytest.mark.slow

DEPLOYMENT = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: demo
    spec:
      selector:
        matchLabels: {app: demo}
      template:
        metadata:
          labels: {app: demo}
        spec:
          containers:
            - name: c
              image: busybox:1.36
    """
)


def test_valid_manifest_passes(toolchain: dict[str, Path]) -> None:
    results = validate_manifest(DEPLOYMENT)
    assert [(r.kind, r.name, r.ok) for r in results] == [("Deployment", "demo", True)]


def test_unknown_field_fails_in_strict_mode(toolchain: dict[str, Path]) -> None:
    bad = DEPLOYMENT.replace("\n  selector:", "\n  replicaz: 2\n  selector:", 1)
    assert "replicaz" in bad
    (result,) = validate_manifest(bad)
    assert not result.ok
    assert "replicaz" in result.message


def test_wrong_type_fails(toolchain: dict[str, Path]) -> None:
    bad = DEPLOYMENT.replace("image: busybox:1.36", "image: 42")
    (result,) = validate_manifest(bad)
    assert not result.ok


def test_kind_without_schema_is_not_ok(toolchain: dict[str, Path]) -> None:
    crd_object = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"
    (result,) = validate_manifest(crd_object)
    assert not result.ok
    assert "could not find schema" in result.message
