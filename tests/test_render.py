"""Rendering through the real helm: values on stdin, argument lists, helm's errors as one line."""

from pathlib import Path

import pytest

from archon.errors import CommandFailed
from archon.helm import helm_error_line
from archon.render import merge_overrides, render_chart, user_overrides

pytestmark = pytest.mark.slow


def test_values_reach_the_template(tiny_chart: Path, tmp_path: Path, toolchain) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("greeting: bonjour\n")
    rendered = render_chart([values], release="rel")
    (cm,) = rendered.by_kind("ConfigMap")
    assert cm["metadata"]["name"] == "rel-tiny"
    assert cm["data"] == {"greeting": "bonjour", "model": "demo"}


def test_shell_metacharacters_pass_through_literally(
    tiny_chart: Path,
    tmp_path: Path,
    toolchain,  # type: ignore[no-untyped-def]
) -> None:
    marker = tmp_path / "pwned"
    payload = f"$(touch {marker}); `touch {marker}` | && ;"
    rendered = render_chart([], overrides={"greeting": payload})
    assert rendered.by_kind("ConfigMap")[0]["data"]["greeting"] == payload
    assert not marker.exists()


def test_template_fail_becomes_one_line(tiny_chart: Path, toolchain) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CommandFailed) as info:
        render_chart([], overrides={"replicas": 3})
    line = info.value.line()
    assert "\n" not in line
    assert line.startswith("replicas: more than 2 needs a second GPU")


def test_null_in_a_later_file_survives_merging(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text("model: {name: x}\n")
    second.write_text("model: {name: null}\n")
    assert user_overrides([first, second]) == {"model": {"name": None}}
    assert merge_overrides({"a": {"b": 1}}, {"a": {"c": 2}}) == {"a": {"b": 1, "c": 2}}


def test_helm_error_line_keeps_the_message() -> None:
    stderr = (
        "Error: execution error at (archon/templates/server/deployment.yaml:3:4): "
        "strategy: surge needs a second GPU; fix: use Recreate\n"
    )
    assert helm_error_line(stderr) == "strategy: surge needs a second GPU; fix: use Recreate"
    assert helm_error_line("Error: chart not found\n") == "chart not found"


def test_schema_problems_are_reported_before_helm_runs(tiny_chart: Path, tmp_path: Path) -> None:
    from archon.errors import ProblemsFound

    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {gpuMemoryUtilization: 1.5}\nvendr: amd\n")
    with pytest.raises(ProblemsFound) as info:
        render_chart([bad])
    lines = info.value.line().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(f"{bad}: ") for line in lines)
    assert any("model.gpuMemoryUtilization: 1.5 is out of range" in line for line in lines)
    assert any("did you mean 'vendor'?" in line for line in lines)
