"""Archon stands on its own: one version, everything it reads shipped as package data, the chart
as a linted archive, the pre-commit hooks, and (slow) a wheel built from the sdist, installed in
a fresh virtualenv and run from an empty folder."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

import archon
from archon.cli.main import main
from archon.paths import (
    cache_dir,
    calibration_cases,
    chart_dir,
    data_dir,
    data_file,
    gateway_hook,
    profiles_dir,
)

REPO = Path(__file__).resolve().parent.parent
HOOKS = REPO / ".pre-commit-hooks.yaml"
CHART_VERSION = str(
    yaml.safe_load((REPO / "charts" / "archon" / "Chart.yaml").read_text())["version"]
)
VENV_BIN = Path(sys.executable).parent


# --- one version ----------------------------------------------------------------------------


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"archon {archon.__version__}"


def test_pyproject_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "archon.__version__"}


# --- package data ---------------------------------------------------------------------------


def test_the_checkout_ships_its_single_sources_as_package_data() -> None:
    assert chart_dir().samefile(REPO / "charts" / "archon")
    assert profiles_dir().samefile(REPO / "values")
    assert calibration_cases().samefile(REPO / "benchmarks" / "vllm-startups.jsonl")
    assert gateway_hook().samefile(REPO / "charts" / "archon" / "files" / "archon_hook.py")
    for parts in [
        ("toolchain.json",),
        ("kwok", "stages.yaml"),
        ("gpus", "profiles.yaml"),
        ("models", "catalog.yaml"),
        ("compat", "rules.yaml"),
        ("gomod", "kubernetes", "go.mod"),
        ("gomod", "etcd", "main.go"),
    ]:
        assert data_file(*parts).is_file(), parts
    assert not (REPO / "tools" / "archon" / "gateway" / "hook.py").exists(), "one hook source"


def test_paths_are_real_not_symlinks() -> None:
    # helm remarks on every symlink it follows; go resolves modules from real folders.
    for path in (data_dir(), chart_dir(), profiles_dir(), calibration_cases()):
        assert path == path.resolve(), path


def test_chart_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ARCHON_CHART_DIR", str(tmp_path))
    assert chart_dir() == tmp_path.resolve()


# --- pre-commit hooks -----------------------------------------------------------------------


def _hooks() -> dict[str, dict[str, Any]]:
    from pre_commit.clientlib import load_manifest

    return {hook["id"]: hook for hook in load_manifest(str(HOOKS))}


def test_the_hooks_file_passes_pre_commits_own_schema() -> None:
    hooks = _hooks()
    assert set(hooks) == {"archon-lint", "archon-preflight"}
    for hook in hooks.values():
        assert hook["language"] == "python", "pre-commit installs archon from the repository"
        assert shlex.split(hook["entry"])[0] in ("archon", "bash")


@pytest.mark.parametrize(
    ("path", "lint", "preflight"),
    [
        ("values.yaml", True, False),
        ("values-prod.yaml", True, False),
        ("clusters/home/values.yml", True, False),
        ("values/rtx5080.yaml", True, True),
        ("gitops/values/rx7900xtx.yaml", True, True),
        ("Chart.yaml", False, False),
        ("templates/deployment.yaml", False, False),
        ("values/notes.txt", False, False),
    ],
)
def test_hook_file_filters(path: str, lint: bool, preflight: bool) -> None:
    hooks = _hooks()
    assert bool(re.search(hooks["archon-lint"]["files"], path)) is lint
    assert bool(re.search(hooks["archon-preflight"]["files"], path)) is preflight


def _run_hook(
    hook: dict[str, Any], files: list[Path], cwd: Path
) -> subprocess.CompletedProcess[str]:
    # What pre-commit runs: the entry, the hook's args, then the matched file names.
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [*shlex.split(hook["entry"]), *hook["args"], *(str(f) for f in files)]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_hook_entries_pass_on_the_shipped_profiles() -> None:
    hooks = _hooks()
    files = sorted(p.relative_to(REPO) for p in (REPO / "values").glob("*.yaml"))
    assert files
    for hook in hooks.values():
        matched = [f for f in files if re.search(hook["files"], f.as_posix())]
        assert matched == files, hook["id"]
        proc = _run_hook(hook, matched, REPO)
        assert proc.returncode == 0, f"{hook['id']}: {proc.stdout}{proc.stderr}"
    preflight = _run_hook(hooks["archon-preflight"], files, REPO)
    assert preflight.stdout.count("preflight: PASS") == len(files), "one report per file"


def test_hook_entries_fail_on_a_profile_that_cannot_start(tmp_path: Path) -> None:
    values = yaml.safe_load((REPO / "values" / "rtx5080.yaml").read_text(encoding="utf-8"))
    values.setdefault("model", {})["maxModelLen"] = 131072
    folder = tmp_path / "values"
    folder.mkdir()
    (folder / "too-long.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
    shutil.copy(REPO / "values" / "rtx4090.yaml", folder / "fine.yaml")
    files = [Path("values/fine.yaml"), Path("values/too-long.yaml")]
    for hook in _hooks().values():
        proc = _run_hook(hook, files, tmp_path)
        assert proc.returncode != 0, f"{hook['id']} let a failing profile through"
        assert "too-long.yaml" in proc.stdout + proc.stderr, hook["id"]


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.name=archon", "-c", "user.email=archon@localhost", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.slow
def test_pre_commit_installs_archon_and_runs_the_hooks(tmp_path: Path) -> None:
    """The real pre-commit, as a user's GitOps repository runs it: archon installed from a tag."""
    source = tmp_path / "archon"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "*_cache", "*.egg-info", "__pycache__", "build", "dist"
        ),
    )
    _git("init", "-q", cwd=source)
    _git("add", "-A", cwd=source)
    _git("commit", "-qm", "release", cwd=source)
    _git("tag", "v0.0.0-test", cwd=source)

    gitops = tmp_path / "gitops"
    (gitops / "values").mkdir(parents=True)
    shutil.copy(REPO / "values" / "rtx5080.yaml", gitops / "values" / "rtx5080.yaml")
    config = {
        "repos": [
            {
                "repo": str(source),
                "rev": "v0.0.0-test",
                "hooks": [{"id": "archon-lint"}, {"id": "archon-preflight"}],
            }
        ]
    }
    (gitops / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    _git("init", "-q", cwd=gitops)
    _git("add", "-A", cwd=gitops)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    run = [sys.executable, "-m", "pre_commit", "run", "--all-files"]

    passed = subprocess.run(
        run, cwd=gitops, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-2000:]
    assert passed.stdout.count("Passed") == 2

    values = yaml.safe_load((gitops / "values" / "rtx5080.yaml").read_text(encoding="utf-8"))
    values["model"]["maxModelLen"] = 131072
    (gitops / "values" / "too-long.yaml").write_text(yaml.safe_dump(values), encoding="utf-8")
    _git("add", "-A", cwd=gitops)
    failed = subprocess.run(
        run, cwd=gitops, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert failed.returncode == 1
    assert failed.stdout.count("Failed") == 2 and "too-long.yaml" in failed.stdout


# --- the chart archive ----------------------------------------------------------------------


@pytest.mark.slow
def test_chart_package_lints_and_writes_a_versioned_archive(
    toolchain: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    from archon.helm import Helm

    result = run_cli("chart", "package", "--destination", str(tmp_path / "out"), "--output", "json")
    assert result.code == 0, result.err
    packaged = json.loads(result.out)
    tgz = Path(packaged["path"])
    assert tgz.name == f"archon-{CHART_VERSION}.tgz" and tgz.is_file()
    assert packaged["version"] == CHART_VERSION
    with tarfile.open(tgz) as archive:
        names = archive.getnames()
    assert "archon/Chart.yaml" in names and "archon/files/archon_hook.py" in names
    assert not [n for n in names if "/ci/" in n or "__pycache__" in n], ".helmignore applies"
    values = yaml.safe_load((REPO / "values" / "rtx5080.yaml").read_text(encoding="utf-8"))
    rendered = Helm().template(tgz, values, release="t", namespace="default")
    kinds = {doc["kind"] for doc in yaml.safe_load_all(rendered) if doc}
    assert {"Deployment", "Service"} <= kinds


@pytest.mark.slow
def test_chart_package_reports_lint_findings(
    toolchain: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(REPO / "charts" / "archon", chart)
    (chart / "templates" / "broken.yaml").write_text("kind: [\n", encoding="utf-8")
    result = run_cli("chart", "package", "--chart", str(chart), "-d", str(tmp_path / "out"))
    assert result.code == 1
    assert "templates/broken.yaml" in result.err and "Traceback" not in result.err
    assert not (tmp_path / "out").exists(), "nothing packaged after a failed lint"


# --- the wheel, installed elsewhere ---------------------------------------------------------


def _run(
    cmd: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float = 600,
    codes: tuple[int, ...] = (0,),
) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode in codes, f"{' '.join(cmd)}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    return proc.stdout


@pytest.mark.slow
def test_wheel_built_from_the_sdist_runs_from_an_empty_folder(
    toolchain: dict[str, Path], tmp_path: Path
) -> None:
    from archon.toolchain import ensure_all

    ensure_all()  # `archon toolchain check` below needs every tool; cached after the first run
    # Neither the checkout's package nor a user's PYTHONPATH may leak into the fresh install.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["ARCHON_CACHE_DIR"] = str(cache_dir())  # the warm toolchain: helm, kubeconform, schemas
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    timings = {}

    start = time.perf_counter()
    dist = tmp_path / "dist"
    # `python -m build` makes the sdist, then the wheel from the unpacked sdist: a file missing
    # from the sdist is missing from the wheel.
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=tmp_path, env=env)
    timings["build"] = time.perf_counter() - start
    (sdist,) = dist.glob("archon_vllm-*.tar.gz")
    (wheel,) = dist.glob("archon_vllm-*.whl")
    assert sdist.name == f"archon_vllm-{archon.__version__}.tar.gz"
    with tarfile.open(sdist) as archive:
        assert not [m.name for m in archive.getmembers() if m.issym()], "real files, no symlinks"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in [
        "archon/data/chart/Chart.yaml",
        "archon/data/chart/.helmignore",
        "archon/data/chart/values.schema.json",
        "archon/data/chart/files/archon_hook.py",
        "archon/data/profiles/rtx5080.yaml",
        "archon/data/benchmarks/vllm-startups.jsonl",
        "archon/data/kwok/stages.yaml",
        "archon/data/toolchain.json",
        "archon/data/gomod/kubernetes/go.mod",
        "archon/data/gomod/kubernetes/go.sum",
        "archon/data/gomod/etcd/main.go",
        "archon/py.typed",
    ]:
        assert name in names, f"{name} missing from {wheel.name}"

    start = time.perf_counter()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=env)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", str(wheel)], cwd=tmp_path, env=env)
    timings["venv and install"] = time.perf_counter() - start

    work = tmp_path / "empty"
    work.mkdir()
    archon_bin = str(venv / "bin" / "archon")
    python = str(venv / "bin" / "python")
    location = _run(
        [python, "-c", "import archon.paths as p; print(p.__file__); print(p.data_dir())"],
        cwd=work,
        env=env,
    ).split()
    for path in location:
        assert Path(path).is_relative_to(venv), f"{path} is not the installed package"
    data = Path(location[1])

    start = time.perf_counter()
    assert _run([archon_bin, "--version"], cwd=work, env=env).strip() == (
        f"archon {archon.__version__}"
    )
    assert "RTX 5080" in _run([archon_bin, "gpus"], cwd=work, env=env)
    shutil.copy(data / "profiles" / "rtx5080.yaml", work / "values.yaml")
    assert "preflight: PASS" in _run(
        [archon_bin, "preflight", "-f", "values.yaml"], cwd=work, env=env
    )
    _run([archon_bin, "lint", "values.yaml"], cwd=work, env=env)
    rendered = _run([archon_bin, "render", "-f", "values.yaml"], cwd=work, env=env)
    assert "kind: Deployment" in rendered
    _run([archon_bin, "validate", "-f", "values.yaml"], cwd=work, env=env)
    bench = json.loads(
        # exit 1 when an accuracy target is missed; the replay itself must work
        _run(
            [archon_bin, "bench", "preflight", "--output", "json"],
            cwd=work,
            env=env,
            codes=(0, 1),
        )
    )
    assert len(bench["cases"]) == len(calibration_cases().read_text().splitlines())
    packaged = json.loads(
        _run([archon_bin, "chart", "package", "--output", "json"], cwd=work, env=env)
    )
    with tarfile.open(packaged["path"]) as archive:
        assert not [n for n in archive.getnames() if "__pycache__" in n]
    _run([archon_bin, "toolchain", "check"], cwd=work, env=env)
    timings["commands"] = time.perf_counter() - start

    # Every wrapper module resolves, from the installed package, the packages its tool is built
    # from with the module cache alone (what `archon toolchain install` builds there).
    wrappers = json.loads(
        _run(
            [
                python,
                "-c",
                "import json; from archon.toolchain import load_specs; print(json.dumps("
                "{n: [str(s.wrapper_dir()), s.package] for n, s in load_specs().items() "
                "if s.wrapper}))",
            ],
            cwd=work,
            env=env,
        )
    )
    assert {"kube-apiserver", "etcd"} <= set(wrappers)
    go_env = dict(env, GOWORK="off", GOFLAGS="-mod=readonly", GOPROXY="off")
    for name, (folder, package) in wrappers.items():
        assert Path(folder).is_relative_to(venv) and (Path(folder) / "go.sum").is_file(), name
        listed = _run(["go", "list", "-deps", package], cwd=Path(folder), env=go_env)
        assert listed.splitlines()[-1] == package, name
    print(f"wheel test timings: {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
