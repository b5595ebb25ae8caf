"""Bad input a user can hand Archon, at the depth where it is refused: the one values reader
(size, aliases, nesting, numbers JSON cannot carry, stdin, special files) and the command-line
flags (names, numbers, URLs), each one line with a fix and exit 2, never an internal error."""

from __future__ import annotations

import errno
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from archon.errors import UsageError, format_value
from archon.values import (
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_VALUES_BYTES,
    ValuesSet,
    read_yaml_file,
)

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{','.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def _refused(path: Path | str) -> str:
    with pytest.raises(UsageError) as info:
        read_yaml_file(path)
    line = info.value.line()
    assert "\n" not in line and line.count("fix:") == 1
    assert info.value.exit_code == 2
    return line


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    assert len(BOMB) < 400  # a few hundred bytes that would expand to 9**9 strings
    line = _refused(path)  # refused from the node graph, before any value is built
    assert line.startswith(f"{path}: its aliases expand to more than {MAX_EXPANDED_NODES} values")


def test_an_alias_bomb_under_extra_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    nested = BOMB.replace("\n", "\n    ")
    path.write_text(f"model:\n  extraConfig:\n    {nested}\n")
    assert "aliases expand" in _refused(path)


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("base: &r {cpu: '1'}\nresources: {requests: *r, limits: *r}\n")
    assert read_yaml_file(path)["resources"]["limits"] == {"cpu": "1"}


def test_a_file_above_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: '" + "x" * MAX_VALUES_BYTES + "'\n")
    line = _refused(path)
    assert "larger than 1024 KiB" in line and "1 MiB" in line


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("a: " + "[" * 20000 + "]" * 20000 + "\n")
    assert f"nesting deeper than {MAX_DEPTH} levels" in _refused(path)


@pytest.mark.parametrize("word", [".nan", ".inf", "-.Inf"])
def test_numbers_json_cannot_carry_are_refused(tmp_path: Path, word: str) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(f"model:\n  extraConfig:\n    x: {word}\n")
    assert f"{word} at line 3 is not a number JSON can carry" in _refused(path)


def test_an_integer_beyond_64_bits_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("replicaCount: 1" + "0" * 5000 + "\n")
    assert "does not fit in 64 bits" in _refused(path)


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("model: {}\nreplicaCount: 1\nmodel: {}\n")
    assert "duplicate key 'model' at line 3 (first at line 1)" in _refused(path)


def test_a_nul_byte_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "v.yaml"
    path.write_bytes(b"a: 1\nb: 'x\x00'\n")
    assert f"{path}: contains a NUL byte at line 2" in _refused(path)


def test_special_files_are_named_for_what_they_are(tmp_path: Path) -> None:
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    assert "symlink loop" in _refused(loop)
    assert "is a directory" in _refused(tmp_path)
    assert "file not found" in _refused(tmp_path / "missing.yaml")
    assert read_yaml_file(os.devnull) == {}  # an empty file, as helm reads it


def test_an_unreadable_file_says_permission_denied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: make the kernel's answer the one a user gets
        real_open = open

        def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
            if str(file) == str(path):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", refuse)
    assert "permission denied" in _refused(path)


def test_values_from_stdin_are_read_once(tiny_chart: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"greeting: from-stdin\n"))
    monkeypatch.setattr(sys, "stdin", stdin)
    values = ValuesSet.read(["-"])
    assert values.merged["greeting"] == "from-stdin"
    assert values.source == "<stdin>"
    with pytest.raises(UsageError, match="standard input is named twice"):
        ValuesSet.read(["-", "-"])


def test_two_unknown_keys_in_one_map_are_both_reported(tiny_chart: Path, tmp_path: Path) -> None:
    from archon.schema import schema_problems

    problems = schema_problems({"model": {"name": "m", "bogus": 1, "other": 2}})
    assert [p.key for p in problems] == ["model.bogus", "model.other"]


def test_format_value_never_stringifies_a_whole_tree() -> None:
    class Tree(dict[str, object]):
        def __repr__(self) -> str:
            raise AssertionError("the whole tree was stringified")

        __str__ = __repr__

    huge = Tree({f"k{i}": list(range(1000)) for i in range(1000)})
    text = format_value(huge)
    assert len(text) <= 80
    assert len(format_value("x" * 10_000_000)) <= 80
    assert format_value(10**5000) == "an integer of 16610 bits"


# --- command-line flags -------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("council", "q", "--timeout", "nan"),
        ("council", "q", "--timeout", "-1"),
        ("council", "q", "--gateway", "http://127.0.0.1:99999"),
        ("council", "q", "--gateway", "not a url"),
        ("preflight", "--weights-gib", "nan"),
        ("preflight", "--weights-gib", "inf"),
        ("status", "-n", "Bad NS"),
        ("render", "-n", "Bad NS"),
        ("validate", "--release", "Bad_Name"),
        ("deploy", "-f", "v.yaml", "--release", "x" * 54),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    from archon.cli.main import main

    with pytest.raises(SystemExit) as info:
        main(list(argv))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fix:" in err


def test_an_empty_gateway_variable_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from archon.cli.council import DEFAULT_GATEWAY
    from archon.cli.main import build_parser

    monkeypatch.setenv("ARCHON_GATEWAY_URL", "")
    args = build_parser("council").parse_args(["council", "q"])
    assert args.gateway == DEFAULT_GATEWAY


def test_deploy_json_prints_one_object_on_failure(tmp_path: Path, run_cli: Any) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("model: [not, a, map]\n")
    result = run_cli("deploy", "-f", str(values), "-o", "json", "--kubeconfig", str(tmp_path / "k"))
    report = json.loads(result.out)
    assert report["exit_code"] == result.code == 2
    assert "kubeconfig not found" in report["error"]
    assert result.err.strip() == report["error"]


def test_only_pods_past_their_deletion_deadline_count_as_stuck() -> None:
    from datetime import UTC, datetime

    from archon.cluster.lifecycle import stuck_pods

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def pod(name: str, stamp: str | None) -> dict[str, object]:
        meta: dict[str, object] = {"name": name, "namespace": "ns"}
        if stamp:
            meta["deletionTimestamp"] = stamp
        return {"metadata": meta}

    pods = [
        pod("running", None),
        pod("stuck", "2026-01-01T11:58:00Z"),  # its grace period ended two minutes ago
        pod("in-grace", "2026-01-01T12:00:30Z"),  # still shutting down: left alone
    ]
    assert [p["metadata"]["name"] for p in stuck_pods(pods, now)] == ["stuck"]


@pytest.mark.slow
@pytest.mark.parametrize("text", ["archetypes: 1\n", "model: 3\n", "archetypes: [1]\n"])
def test_lint_of_a_wrong_shape_is_a_problem_not_an_internal_error(
    tmp_path: Path, run_cli: Any, text: str
) -> None:
    # Found by the generated files: a check that assumes the schema's shapes ran before it.
    path = tmp_path / "v.yaml"
    path.write_text(text)
    result = run_cli("lint", str(path))
    assert result.code == 1, result.err
    assert "internal error" not in result.err


# --- the same refusals everywhere ---------------------------------------------------------

DUPLICATES = """\
gpu: {profile: RTX 5080}
archetypes:
  - {name: maat, mode: prompt, systemPrompt: judge}
  - {name: maat, mode: prompt, systemPrompt: judge again}
"""


def test_duplicate_archetype_names_fail_the_preflight_as_they_fail_lint(
    tmp_path: Path, run_cli: Any
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(DUPLICATES)
    expected = f"{path}: archetypes[1].name: 'maat' is also archetypes[0].name"
    preflight = run_cli("preflight", "-f", str(path))
    assert preflight.code == 1
    assert "preflight: FAIL  the values do not pass the chart's archetype rules" in preflight.out
    assert f"FAIL {expected}" in preflight.out and "KV cache" not in preflight.out
    report = json.loads(run_cli("preflight", "-f", str(path), "-o", "json").out)
    assert report["verdict"] == "FAIL" and report["kv_cache_tokens"] is None
    assert [(p["key"], p["rule"]) for p in report["problems"]] == [
        ("archetypes[1].name", "archetypes")
    ]
    lint = run_cli("lint", "--no-preflight", str(path))
    assert lint.code == 1 and expected in lint.err


@pytest.mark.slow
def test_the_chart_refuses_duplicate_archetype_names_too(
    toolchain: dict[str, Path], tmp_path: Path, run_cli: Any
) -> None:
    # What lint and the preflight refuse without helm is what the chart's templates refuse.
    path = tmp_path / "v.yaml"
    path.write_text(DUPLICATES)
    render = run_cli("render", "-f", str(path))
    assert render.code == 1
    assert "archetypes[1].name" in render.err and "'maat'" in render.err.replace('"', "'")


# --- --simulate on names the local cluster only ---------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ("argocd", "wait", "app"),
        ("argocd", "sync", "app"),
        ("tekton", "run", "--pipeline", "p"),
        ("tekton", "cancel", "run-1"),
    ],
)
def test_simulate_on_is_refused_on_another_cluster_before_any_call(
    dead_cluster: Path, run_cli: Any, argv: tuple[str, ...]
) -> None:
    # The API at dead_cluster is a closed port: had anything been called, the line would say so.
    result = run_cli(*argv, "--simulate", "on", "--kubeconfig", str(dead_cluster))
    assert result.code == 2
    line = result.err.strip()
    assert len(line.splitlines()) == 1 and line.count("fix:") == 1
    assert line.startswith("--simulate: --simulate on: the cluster at https://127.0.0.1:1")
    assert "is not Archon's local cluster" in line and "cannot be reached" not in line
    assert result.out == ""


def test_simulate_on_follows_the_local_cluster_into_an_exported_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    from archon.cluster.lifecycle import kubeconfig_path
    from conftest import DEAD_KUBECONFIG

    monkeypatch.setenv("ARCHON_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ARCHON_CLUSTER", "exported")
    kubeconfig_path().parent.mkdir(parents=True)
    kubeconfig_path().write_text(DEAD_KUBECONFIG)
    exported = tmp_path / "config"  # the same server under other names, as ~/.kube/config
    exported.write_text(
        DEAD_KUBECONFIG.replace("name: c,", "name: local,")
        .replace("cluster: c,", "cluster: local,")
        .replace("ctx", "archon-local")
    )
    result = run_cli("argocd", "wait", "app", "--simulate", "on", "--kubeconfig", str(exported))
    assert result.code == 2
    assert "is not Archon's local cluster" not in result.err
    assert "cannot be reached" in result.err  # it went on to the (closed) API server
