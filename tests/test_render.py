"""Rendering through the real helm: values on stdin, argument lists, helm's errors as one line."""

from pathlib import Path

import pytest

from archon.errors import ProblemsFound
from archon.helm import RenderFailed
from archon.render import render_chart, render_values
from archon.values import ValuesSet

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


def test_template_fail_becomes_one_line(tiny_chart: Path, tmp_path: Path, toolchain) -> None:  # type: ignore[no-untyped-def]
    values = tmp_path / "v.yaml"
    values.write_text("replicas: 3\n")
    with pytest.raises(ProblemsFound) as info:
        render_chart([values])
    line = info.value.line()
    assert "\n" not in line
    # the file and the key, not "values:", and the chart's one fix
    assert line == f"{values}: replicas: more than 2 needs a second GPU; fix: set replicas <= 2"
    assert line.count("fix:") == 1
    assert isinstance(info.value.__cause__, RenderFailed)
    assert "execution error at" in info.value.__cause__.stderr  # helm's full words are kept


def test_a_null_in_a_later_file_reaches_helm(tiny_chart: Path, tmp_path: Path, toolchain) -> None:  # type: ignore[no-untyped-def]
    # The null removes the chart default `greeting` in helm, so the template prints nothing.
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text("greeting: hi\n")
    second.write_text("greeting: null\n")
    values = ValuesSet.read([first, second])
    assert values.overrides == {"greeting": None}
    (cm,) = render_values(values).by_kind("ConfigMap")
    assert cm["data"]["greeting"] in (None, "")  # neither "hi" nor the default "hello"


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
