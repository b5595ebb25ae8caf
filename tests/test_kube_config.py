"""Choosing the cluster the way kubectl does: --kubeconfig, $KUBECONFIG, ~/.kube/config,
the in-cluster service account; --kube-context over current-context."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from archon.errors import UsageError
from archon.kube.config import resolve_target


def _kubeconfig(path: Path, contexts: dict[str, str], current: str = "") -> Path:
    """A kubeconfig with one cluster per context: name -> server."""
    data: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": f"c-{n}", "cluster": {"server": s}} for n, s in contexts.items()],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": n, "context": {"cluster": f"c-{n}", "user": "u"}} for n in contexts],
    }
    if current:
        data["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return tmp_path / "home"


def test_flag_wins_over_environment_and_home(home: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _kubeconfig(home / ".kube" / "config", {"home": "https://home:6443"}, "home")
    env = _kubeconfig(tmp_path / "env.yaml", {"env": "https://env:6443"}, "env")
    flag = _kubeconfig(tmp_path / "flag.yaml", {"flag": "https://flag:6443"}, "flag")
    monkeypatch.setenv("KUBECONFIG", str(env))
    target = resolve_target(flag)
    assert (target.context, target.server, target.source) == (
        "flag",
        "https://flag:6443",
        "--kubeconfig",
    )
    assert target.helm_flags() == ["--kubeconfig", str(flag), "--kube-context", "flag"]
    assert resolve_target().server == "https://env:6443"
    monkeypatch.delenv("KUBECONFIG")
    home_target = resolve_target()
    assert (home_target.server, home_target.source) == ("https://home:6443", "~/.kube/config")
    # helm reads $KUBECONFIG and ~/.kube/config itself; only the context is pinned
    assert home_target.helm_flags() == ["--kube-context", "home"]


def test_kubeconfig_list_merges_like_kubectl(home: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = _kubeconfig(tmp_path / "a.yaml", {"a": "https://a:6443"}, "b")
    second = _kubeconfig(tmp_path / "b.yaml", {"b": "https://b:6443", "a": "https://other"}, "a")
    monkeypatch.setenv(
        "KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "gone"), str(second)])
    )
    target = resolve_target()
    # the first current-context wins, and the first definition of a name wins
    assert (target.context, target.server) == ("b", "https://b:6443")
    assert resolve_target(None, "a").server == "https://a:6443"
    assert target.files == (first, second)


def test_context_flag_picks_and_unknown_context_names_the_choices(
    home: Path, tmp_path: Path
) -> None:
    file = _kubeconfig(
        tmp_path / "k.yaml", {"one": "https://1:6443", "two": "https://2:6443"}, "one"
    )
    assert resolve_target(file, "two").server == "https://2:6443"
    with pytest.raises(UsageError) as info:
        resolve_target(file, "three")
    line = info.value.line()
    assert "--kube-context" in line and "'three'" in line and "one, two" in line


def test_missing_or_empty_kubeconfig_is_unusable_input(home: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="kubeconfig not found") as missing:
        resolve_target(tmp_path / "missing")
    assert missing.value.exit_code == 2
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(UsageError, match="no current-context"):
        resolve_target(empty)
    broken = tmp_path / "broken"
    broken.write_text("clusters: [\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        resolve_target(broken)


def test_nothing_found_says_how_to_get_a_cluster(home: Path) -> None:
    with pytest.raises(UsageError) as info:
        resolve_target()
    assert "archon cluster up" in info.value.line()


def test_describe_names_context_server_and_where_it_came_from(home: Path, tmp_path: Path) -> None:
    file = _kubeconfig(
        tmp_path / "k.yaml", {"kwok-archon": "https://127.0.0.1:6443"}, "kwok-archon"
    )
    text = resolve_target(file).describe()
    assert "'kwok-archon'" in text and "https://127.0.0.1:6443" in text and "--kubeconfig" in text


def test_deploy_refuses_a_missing_kubeconfig_before_touching_anything(  # type: ignore[no-untyped-def]
    home: Path, tmp_path: Path, run_cli
) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    result = run_cli("deploy", "-f", str(values), "--kubeconfig", str(tmp_path / "nope"))
    assert result.code == 2
    assert "--kubeconfig" in result.err and "Traceback" not in result.err


def test_a_kubeconfig_of_the_wrong_shape_is_unusable_input(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_text("clusters: 5\ncurrent-context: x\n")
    with pytest.raises(UsageError, match="clusters is a int, not a list") as info:
        resolve_target(bad)
    assert info.value.exit_code == 2
