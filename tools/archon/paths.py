"""Where Archon finds its own files and keeps its cache.

Everything Archon reads at run time (the Helm chart, the GPU values profiles, the model catalog,
the toolchain pins and wrapper Go modules, the kwok stages, the calibration cases) is package
data under `archon/data`, reached through importlib.resources. An installed wheel therefore
needs no checkout. In a checkout `data/chart`, `data/profiles` and `data/benchmarks` are
symlinks to `charts/archon`, `values` and `benchmarks`, so the chart Helm users install directly
stays the one copy; the sdist and the wheel carry real files.
"""

from __future__ import annotations

import os
import shutil
import sys
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import ModuleType

from archon import __version__


def _extract(node: Traversable, dest: Path) -> None:
    if node.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        for child in node.iterdir():
            _extract(child, dest / child.name)
    else:
        dest.write_bytes(node.read_bytes())


@cache
def data_dir() -> Path:
    """`archon/data` as a real folder: helm and go need paths, not importlib Traversables."""
    root = resources.files("archon") / "data"
    if isinstance(root, Path):
        return root.resolve()
    # A package imported from a zip: unpack the data once per version, beside the tools.
    dest = cache_dir() / "package-data" / __version__
    if not dest.is_dir():
        partial = dest.with_name(dest.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        _extract(root, partial)
        try:
            partial.rename(dest)
        except OSError:  # another process finished first
            shutil.rmtree(partial, ignore_errors=True)
    return dest


def data_file(*parts: str) -> Path:
    """A file or folder of the package data, e.g. data_file("models", "catalog.yaml")."""
    # Resolved: in a checkout `chart` is a symlink, and helm remarks on every symlink it follows.
    return data_dir().joinpath(*parts).resolve()


def chart_dir() -> Path:
    """The Helm chart; $ARCHON_CHART_DIR points at another copy (a fork, a test's variant)."""
    override = os.environ.get("ARCHON_CHART_DIR")
    if override:
        return Path(override).resolve()
    return data_file("chart")


def profiles_dir() -> Path:
    """The shipped values profiles, one per GPU (the checkout's `values/`)."""
    return data_file("profiles")


def calibration_cases() -> Path:
    """Public reports of vLLM starting or failing on real GPUs, for `archon bench preflight`."""
    return data_file("benchmarks", "vllm-startups.jsonl")


def gateway_hook() -> Path:
    """The LiteLLM hook, as the packaged chart ships it (`files/archon_hook.py`)."""
    return data_file("chart", "files", "archon_hook.py")


def load_chart_module(name: str) -> ModuleType:
    """A Python module of the chart's `files/` (code the gateway pod imports by name), registered
    in sys.modules under that same name so the chart's own modules can import one another.

    Executed from source, like the hook, so no __pycache__ lands inside the chart. Loaded once per
    process, as an import is: a second call returns the module already registered. A chart of
    $ARCHON_CHART_DIR without the file (a test's minimal chart) leaves the packaged one in use."""
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    path = chart_dir() / "files" / f"{name}.py"
    if not path.is_file():
        path = data_file("chart", "files", f"{name}.py")
    module = ModuleType(name)
    module.__file__ = str(path)
    # Registered before it runs, as importlib does: dataclasses look their module up by name.
    sys.modules[name] = module
    try:
        exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def user_data_dir() -> Path:
    """What Archon keeps for the user between runs (the council's local memory)."""
    override = os.environ.get("ARCHON_DATA_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return (base / "archon").resolve()


def cache_dir() -> Path:
    """Outside the clone, so a second run and a fresh clone reuse what was built."""
    override = os.environ.get("ARCHON_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "archon").resolve()
