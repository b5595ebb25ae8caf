from pathlib import Path

import pytest

from archon.errors import UsageError
from archon.values import get_path, load_values, merge, read_yaml_file


def test_merge_maps_recursively_and_replaces_lists() -> None:
    base = {"model": {"name": "a", "maxModelLen": 8192}, "args": ["x", "y"]}
    merged = merge(base, {"model": {"maxModelLen": 4096}, "args": ["z"]})
    assert merged == {"model": {"name": "a", "maxModelLen": 4096}, "args": ["z"]}
    assert base["model"]["maxModelLen"] == 8192  # inputs are not mutated


def test_null_removes_a_default_like_helm() -> None:
    assert merge({"a": 1, "b": {"c": 2}}, {"b": None}) == {"a": 1}


def test_load_values_applies_files_in_order(tiny_chart: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    second = tmp_path / "second.yaml"
    first.write_text("greeting: hi\nmodel: {maxModelLen: 2048}\n")
    second.write_text("model: {maxModelLen: 1024}\n")
    values = load_values([first, second])
    assert values["greeting"] == "hi"
    assert get_path(values, "model.maxModelLen") == 1024
    assert get_path(values, "model.name") == "demo"  # default kept
    assert get_path(values, "model.missing.deeper", "dflt") == "dflt"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("model: [unclosed\n", "invalid YAML at line"),
        ("- a list\n- at the top\n", "top level is a list, not a mapping"),
    ],
)
def test_unusable_files_raise_usage_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(UsageError) as info:
        read_yaml_file(path)
    assert expected in info.value.line()
    assert str(path) in info.value.line()
    assert "fix:" in info.value.line()


def test_missing_file_is_unusable(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        read_yaml_file(tmp_path / "nope.yaml")


def test_empty_file_is_no_overrides(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# only a comment\n")
    assert read_yaml_file(path) == {}


def test_directory_is_not_a_values_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        read_yaml_file(tmp_path)
