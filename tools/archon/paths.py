"""Where Archon finds its own files and keeps its cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def repo_root() -> Path:
    """The checkout this package runs from (tools/archon -> repository root)."""
    override = os.environ.get("ARCHON_REPO_ROOT")
    if override:
        return Path(override).resolve()
    return PACKAGE_DIR.parent.parent


def chart_dir() -> Path:
    override = os.environ.get("ARCHON_CHART_DIR")
    if override:
        return Path(override).resolve()
    return repo_root() / "charts" / "archon"


def cache_dir() -> Path:
    """Outside the clone, so a second run and a fresh clone reuse what was built."""
    override = os.environ.get("ARCHON_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "archon").resolve()
