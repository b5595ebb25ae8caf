"""Schema lint: one line per problem with key path, value and fix; exit codes 0/1/2."""

from pathlib import Path

import pytest

from archon.errors import UsageError
from archon.lint import lint_files
from archon.schema import key_path


def write(tmp_path: Path, text: str, name: str = "v.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_key_path_formats_lists_like_yaml() -> None:
    assert key_path(["tolerations", 0, "key"]) == "tolerations[0].key"
    assert key_path([]) == ""


def test_clean_file_has_no_problems(tiny_chart: Path, tmp_path: Path) -> None:
    assert lint_files([write(tmp_path, "replicas: 2\n")], preflight=False) == []


@pytest.mark.parametrize(
    ("text", "key", "message", "fix"),
    [
        ("modle: {}\n", "modle", "unknown key 'modle'", "did you mean 'model'?"),
        ("model: {maxModelLen: -5}\n", "model.maxModelLen", "-5 is out of range", ">= 1"),
        (
            "model: {gpuMemoryUtilization: 1.5}\n",
            "model.gpuMemoryUtilization",
            "1.5 is out of range",
            "<= 1",
        ),
        ("model: {gpuMemoryUtilization: 0}\n", "model.gpuMemoryUtilization", "out of range", "> 0"),
        ("vendor: intel\n", "vendor", "'intel' is not allowed", "use one of: 'nvidia', 'amd'"),
        ("replicas: many\n", "replicas", "'many' is not of type integer", "write an integer"),
        ("tolerations: [{key: a, efect: x}]\n", "tolerations[0].efect", "unknown key", "effect"),
        (
            "model: {name: null}\n",
            "model.name",
            "required key 'name' is missing",
            "set model.name, or remove the `name: null` line",
        ),
    ],
)
def test_each_problem_names_key_value_and_fix(
    tiny_chart: Path, tmp_path: Path, text: str, key: str, message: str, fix: str
) -> None:
    problems = lint_files([write(tmp_path, text)], preflight=False)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.key == key
    assert message in problem.message
    assert fix in problem.fix
    line = problem.line()
    assert "\n" not in line
    assert line.startswith(str(tmp_path / "v.yaml") + ": " + key)


def test_cli_exit_codes(tiny_chart: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    good = write(tmp_path, "replicas: 1\n", "good.yaml")
    bad = write(tmp_path, "replicas: 9\nvendor: intel\n", "bad.yaml")
    broken = write(tmp_path, "replicas: [\n", "broken.yaml")

    result = run_cli("lint", "--no-preflight", str(good))
    assert (result.code, result.err) == (0, "")
    assert "1 file(s) clean" in result.out

    result = run_cli("lint", "--no-preflight", str(good), str(bad))
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 2
    assert all(line.startswith(str(bad)) for line in lines)

    result = run_cli("lint", "--no-preflight", str(broken))
    assert result.code == 2
    assert result.err.count("\n") == 1 and "invalid YAML" in result.err

    result = run_cli("lint", "--no-preflight", str(tmp_path / "missing.yaml"))
    assert result.code == 2
    assert "file not found" in result.err


def test_cli_json_output(tiny_chart: Path, tmp_path: Path, run_cli) -> None:  # type: ignore[no-untyped-def]
    import json

    bad = write(tmp_path, "replicas: 0\n")
    result = run_cli("lint", "--no-preflight", "--output", "json", str(bad))
    assert result.code == 1
    data = json.loads(result.out)
    assert data["ok"] is False
    assert data["problems"][0]["key"] == "replicas"
    assert data["problems"][0]["file"] == str(bad)


def test_non_string_keys_are_reported_not_crashed_on(tiny_chart: Path, tmp_path: Path) -> None:
    problems = lint_files([write(tmp_path, "1: 2\n")], preflight=False)
    assert [(p.key, p.message) for p in problems] == [("1", "unknown key '1'")]


def test_nan_is_refused_when_the_file_is_read(tiny_chart: Path, tmp_path: Path) -> None:
    # NaN passes every JSON-schema bound, and JSON (helm's and the API server's form of values)
    # has no NaN: the reader refuses it, naming the line, before any check runs.
    path = write(tmp_path, "model: {gpuMemoryUtilization: .nan}\n")
    with pytest.raises(UsageError) as info:
        lint_files([path])
    assert info.value.line().startswith(f"{path}: .nan at line 1 ")
    assert info.value.exit_code == 2
