"""The one way Archon runs the go command: builds of pinned tools and module downloads.

Every call runs outside the user's workspace: a go.work in a parent folder or a user's GOFLAGS
(-mod=vendor, ...) must not change what a pinned module resolves.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from archon.errors import ToolchainError

DOWNLOAD_TIMEOUT_S = 15 * 60


def go_binary() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolchainError(
            "the go command is not installed", fix="install Go 1.26 or newer and retry"
        )
    return go


def run_go(
    args: Sequence[str],
    *,
    cwd: str | Path,
    timeout_s: float,
    what: str,
    flags: str = "-mod=readonly",
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`go ARGS` in `cwd`; a timeout is a ToolchainError naming `what`, a failure is the caller's
    to word (it knows what the go command was for)."""
    full_env = {**os.environ, "CGO_ENABLED": os.environ.get("CGO_ENABLED", "0")}
    full_env |= {"GOWORK": "off", "GOFLAGS": flags, **(env or {})}
    try:
        return subprocess.run(
            [go_binary(), *args],
            cwd=str(cwd),
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolchainError(
            f"{what} took over {timeout_s:.0f} s",
            fix="check the network to the Go module proxy and retry",
        ) from exc


@cache
def module_dir(module: str, version: str) -> Path:
    """The module's folder in the Go module cache, downloaded (and verified) when missing:
    how envtest finds the CRDs of a pinned module, without copying them anywhere."""
    with tempfile.TemporaryDirectory(prefix="archon-gomod-") as tmp:
        proc = run_go(
            ["mod", "download", "-json", f"{module}@{version}"],
            cwd=tmp,
            timeout_s=DOWNLOAD_TIMEOUT_S,
            what=f"downloading {module}@{version}",
            flags="-mod=mod",
        )
    try:
        info: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or not info.get("Dir"):
        reason = str(info.get("Error") or proc.stderr.strip() or "no module folder reported")
        raise ToolchainError(
            f"go mod download {module}@{version} failed: {reason.splitlines()[-1][:200]}",
            fix="check the Go module proxy is reachable (GOPROXY) and the pin in "
            "data/toolchain.json names a version it serves",
        )
    return Path(info["Dir"])
