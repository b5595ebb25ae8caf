"""Property-based: generated values files through `archon lint`, `preflight`, `render` and
`validate`, and (on the local cluster) `deploy --dry-run`. Whatever the file holds, every command
ends with exit 0, 1 or 2, says what is wrong in lines that each carry a fix, never fails
internally (exit 70) and applies nothing. And the promise the checks make: a file that lint and
the preflight pass renders, its manifests validate, and the API server admits them."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from archon.cli.main import main
from archon.validate import validate_manifests
from archon.values import read_yaml_file

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_FILE = REPO_ROOT / "values" / "rtx5080.yaml"
CASES = 100  # generated files per run, over both properties: each is linted and preflighted,
# and rendered and validated when both pass


def _paths(tree: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield (*prefix, str(key))
            yield from _paths(value, (*prefix, str(key)))


def _defaults() -> dict[str, Any]:
    from archon.paths import chart_dir

    return read_yaml_file(chart_dir() / "values.yaml")


DEFAULTS = _defaults()
PATHS = sorted(set(_paths(DEFAULTS)))


def _default(path: tuple[str, ...]) -> Any:
    node: Any = DEFAULTS
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _plausible(default: Any) -> st.SearchStrategy[Any]:
    """A value of the default's own type: what a user changes most often, and what reaches
    the chart's cross-field refusals rather than the schema."""
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int):
        return st.integers(min_value=0, max_value=2 * default + 2)
    if isinstance(default, float):
        return st.floats(min_value=0.0, max_value=1.2)
    if isinstance(default, str):
        return st.sampled_from([default, "", "x", "RollingUpdate", "amd"])
    if isinstance(default, list):
        return st.just([])
    return st.just({})


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-3, max_value=70_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "Bad_Name", "RollingUpdate", "nvidia.com/gpu", "--max-model-len", "0"]),
)
TREES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
# What no dict can hold: YAML-level shapes appended to the generated file.
RAW = st.sampled_from(
    [
        "",
        "",
        "",
        "",
        "\nextra1: &a [1, 2]\nextra2: *a\n",
        "\nreplicaCount: 1\nreplicaCount: 2\n",
        "\nmodel: {extraConfig: {a: &x [x, x], b: [*x, *x]}}\n",
        "\n\t- not yaml\n",
    ]
)


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


@st.composite
def values_files(draw: st.DrawFn, *, wild: bool = True) -> str:
    """The base profile with one to three keys changed; `wild` adds any shape and YAML-level
    tricks, else every change keeps the default's type (most then pass the schema)."""
    data: dict[str, Any] = yaml.safe_load(BASE_FILE.read_text()) or {}
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        plausible = _plausible(_default(path))
        _set(
            data,
            path,
            draw(st.one_of(plausible, plausible, plausible, TREES) if wild else plausible),
        )
    if not wild:
        return yaml.safe_dump(data, sort_keys=False)
    if draw(st.integers(min_value=0, max_value=5)) == 0:
        _set(data, (*draw(st.sampled_from(PATHS))[:-1], "unknownKey"), 1)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return text + draw(RAW)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def _holds(command: str, code: int, err: str) -> None:
    assert code in (0, 1, 2), f"{command} exit {code}: {err}"
    assert "Traceback" not in err and "internal error" not in err, err
    if code != 0 and err.strip():
        for line in err.strip().splitlines():
            assert "fix:" in line, f"{command}: a line without a fix: {line!r}"


SETTINGS = settings(
    max_examples=CASES // 2,
    deadline=timedelta(seconds=20),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def test_generated_values_files_end_cleanly_and_what_passes_renders_and_validates() -> None:
    rendered: dict[str, str] = {}

    # Any shape, nulls, huge and odd numbers and strings, unknown keys, aliases, duplicate keys.
    @SETTINGS
    @given(text=st.one_of(values_files(), values_files(wild=False)))
    def wild(text: str) -> None:
        _check(text, rendered)

    # Changes of the default's own type: most pass the schema and meet the chart's own rules.
    @SETTINGS
    @given(text=values_files(wild=False))
    def typed(text: str) -> None:
        _check(text, rendered)

    wild()
    typed()
    # The manifests of every case lint and the preflight passed, in one kubeconform run.
    assert len(rendered) >= 10, "too few generated files passed lint: the invariant went untested"
    results = validate_manifests(rendered)
    invalid = [
        f"{r.kind}/{r.name}: {r.message}" for found in results.values() for r in found if not r.ok
    ]
    assert not invalid, invalid


def _check(text: str, rendered: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.yaml"
        path.write_text(text, encoding="utf-8")
        lint, _, lint_err = _run("lint", "--no-preflight", str(path))
        _holds("lint", lint, lint_err)
        preflight, _, preflight_err = _run("preflight", "-f", str(path))
        assert preflight in (0, 1, 2), preflight_err
        assert "internal error" not in preflight_err, preflight_err
        event(f"lint exit {lint}, preflight exit {preflight}")
        if lint != 0 or preflight != 0:
            return
        render, manifest, render_err = _run("render", "-f", str(path))
        _holds("render", render, render_err)
        assert render == 0, f"lint and preflight passed, render refused: {render_err}"
        assert "kind: Deployment" in manifest
        rendered[text] = manifest


DRY_RUN_CASES = 48  # each a full `archon deploy --dry-run`: lint, preflight, helm, admission
DRY_RUN_NAMESPACE = "it-fuzz-dry-run"
KUBE_OWN = {"kube-root-ca.crt"}  # the controller-manager puts it in every namespace


@pytest.mark.integration
def test_generated_values_through_deploy_dry_run_apply_nothing(cluster: Path, kube: Any) -> None:
    """The same generated files through `archon deploy --dry-run` on the local cluster: exit 0,
    1 or 2, every line with a fix, never an internal error, nothing applied; and what deploy's
    own checks (lint, preflight) pass, the API server admits."""
    from archon.gitops.setup import ensure_namespace

    ensure_namespace(kube, DRY_RUN_NAMESPACE)  # a server-side dry-run needs it to exist
    codes: list[int] = []

    @settings(SETTINGS, max_examples=DRY_RUN_CASES // 2)
    @given(text=st.one_of(values_files(), values_files(wild=False)))
    def wild(text: str) -> None:
        codes.append(_dry_run(text, cluster))

    @settings(SETTINGS, max_examples=DRY_RUN_CASES // 2)
    @given(text=values_files(wild=False))
    def typed(text: str) -> None:
        codes.append(_dry_run(text, cluster))

    try:
        wild()
        typed()
        assert len(codes) == DRY_RUN_CASES
        # Enough admitted files for the invariant, and refused ones for the error paths.
        assert codes.count(0) >= 10 and {1, 2} & set(codes), f"a path went untested: {codes}"
        namespaced = [
            f"/api/v1/namespaces/{DRY_RUN_NAMESPACE}/{kind}"
            for kind in ("secrets", "configmaps", "persistentvolumeclaims", "services", "pods")
        ] + [f"/apis/apps/v1/namespaces/{DRY_RUN_NAMESPACE}/deployments"]
        left = {
            url: [n for o in kube.items(url) if (n := o["metadata"]["name"]) not in KUBE_OWN]
            for url in namespaced
        }
        # No release record (helm's sh.helm.release secrets) and no object: nothing applied.
        assert not any(left.values()), left
    finally:
        from cluster_support import drop_namespace

        drop_namespace(kube, DRY_RUN_NAMESPACE)


def _dry_run(text: str, cluster: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.yaml"
        path.write_text(text, encoding="utf-8")
        code, _, err = _run(
            "deploy", "-f", str(path), "-n", DRY_RUN_NAMESPACE, "--dry-run",
            "--kubeconfig", str(cluster),
        )  # fmt: skip
    _holds("deploy --dry-run", code, err)
    assert "server-side dry-run refused" not in err, f"lint and preflight passed: {err}"
    event(f"deploy --dry-run exit {code}")
    return code
