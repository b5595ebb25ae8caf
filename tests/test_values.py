from pathlib import Path

import pytest

from archon.errors import UsageError
from archon.values import ValuesSet, get_path, load_values, merge, read_yaml_file


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


def test_merge_between_user_files_keeps_nulls() -> None:
    assert merge({"a": {"b": 1}}, {"a": {"b": None}}, keep_nulls=True) == {"a": {"b": None}}
    assert merge({"a": {"b": 1}}, {"a": {"b": None}}) == {"a": {}}


def test_values_set_carries_what_helm_and_the_checks_need(tiny_chart: Path, tmp_path: Path) -> None:
    first = tmp_path / "first.yaml"
    second = tmp_path / "second.yaml"
    first.write_text("greeting: hi\nmodel: {maxModelLen: 2048}\n")
    second.write_text("greeting: null\n")
    values = ValuesSet.read([first, second])
    assert [f.path for f in values.files] == [first, second]
    # helm's stdin: the user's files only, the null kept so helm drops the default
    assert values.overrides == {"greeting": None, "model": {"maxModelLen": 2048}}
    # what lint and the preflight check: over the chart defaults, the null applied
    assert "greeting" not in values.merged
    assert values.merged["model"] == {
        "name": "demo",
        "maxModelLen": 2048,
        "gpuMemoryUtilization": 0.9,
    }
    assert values.source == f"{first}, {second}"
    alone = values.each()  # `archon lint`: every file on its own over the defaults
    assert [v.merged.get("greeting") for v in alone] == ["hi", None]
    assert alone[1].merged["model"]["maxModelLen"] == 4096


def test_each_file_is_read_once_per_command(
    tiny_chart: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import archon.values
    from archon.deploy.install import check_inputs

    reads: list[str] = []
    real = archon.values.read_yaml_file

    def counting(path: str | Path) -> dict[str, object]:
        reads.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(archon.values, "read_yaml_file", counting)
    values_file = tmp_path / "v.yaml"
    values_file.write_text("greeting: hi\n")
    check_inputs(ValuesSet.read([values_file]))  # lint of each file, then the preflight
    assert sorted(reads) == ["v.yaml", "values.yaml"]
