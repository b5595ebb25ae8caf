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
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

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


def cache_dir() -> Path:
    """Outside the clone, so a second run and a fresh clone reuse what was built."""
    override = os.environ.get("ARCHON_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "archon").resolve()
