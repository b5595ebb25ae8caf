"""Build pinned tools with `go install` into the cache, and find them again fast.

A built tool lives at <cache>/bin/<name>-<version>/<name> next to a stamp file written only after
the binary answered its version check; a second run therefore only stats two files.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from archon.errors import ToolchainError
from archon.paths import cache_dir
from archon.toolchain.go import run_go
from archon.toolchain.registry import ToolSpec, load_specs

STAMP = ".archon-ok"
BUILD_TIMEOUT_S = 45 * 60


@dataclass(frozen=True)
class ToolStatus:
    name: str
    version: str
    path: Path
    installed: bool


def tool_dir(spec: ToolSpec) -> Path:
    return cache_dir() / "bin" / f"{spec.name}-{spec.version}"


def _binary(spec: ToolSpec) -> Path:
    return tool_dir(spec) / spec.name


def _spec_or_error(name: str) -> ToolSpec:
    specs = load_specs()
    if name not in specs:
        raise ToolchainError(
            f"unknown tool {name!r}", fix=f"use one of: {', '.join(sorted(specs))}"
        )
    return specs[name]


def is_installed(spec: ToolSpec) -> bool:
    return _binary(spec).is_file() and (tool_dir(spec) / STAMP).is_file()


def tool_path(name: str) -> Path:
    """The path of an installed tool; raises with the install command when it is missing."""
    spec = _spec_or_error(name)
    if not is_installed(spec):
        raise ToolchainError(
            f"{name} {spec.version} is not built yet",
            fix="run `archon toolchain install` (or `make toolchain`)",
        )
    return _binary(spec)


@contextmanager
def _lock(name: str) -> Iterator[None]:
    lock_dir = cache_dir() / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def verify(spec: ToolSpec, binary: Path) -> str:
    """Run the tool's version command and check it reports the pinned version."""
    try:
        proc = subprocess.run(
            [str(binary), *spec.version_args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError as exc:
        raise ToolchainError(f"{spec.name} at {binary} cannot run: {exc}") from exc
    output = (proc.stdout + proc.stderr).strip()
    expected = spec.render(spec.version_expect)
    if proc.returncode != 0 or expected not in output:
        raise ToolchainError(
            f"{spec.name} at {binary} reports {output[:120]!r}, expected {expected!r}",
            fix=f"remove {binary.parent} and run `archon toolchain install`",
        )
    return output


def _build(spec: ToolSpec, dest: Path) -> None:
    ldflags = " ".join(spec.render(flag) for flag in spec.ldflags)
    with tempfile.TemporaryDirectory(prefix=f"archon-{spec.name}-", dir=dest.parent) as tmp:
        wrapper = spec.wrapper_dir()
        env = dict(spec.env)
        if wrapper is None:
            env["GOBIN"] = tmp
            cmd = ["install", "-trimpath"]
            if ldflags:
                cmd += ["-ldflags", ldflags]
            cmd.append(f"{spec.package}@{spec.version}")
            cwd = tmp
        else:
            # the wrapper modules carry their own go.sum: -mod=readonly builds exactly that
            cmd = ["build", "-trimpath", "-o", str(Path(tmp) / spec.name)]
            if ldflags:
                cmd += ["-ldflags", ldflags]
            cmd.append(spec.package)
            cwd = str(wrapper)
        what = f"building {spec.name} {spec.version}"
        proc = run_go(cmd, cwd=cwd, env=env, timeout_s=BUILD_TIMEOUT_S, what=what)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise ToolchainError(
                f"{what} failed: {tail}",
                fix="check the Go module proxy is reachable and Go is 1.26+, then retry",
            )
        built = Path(tmp) / spec.binary_name
        if not built.is_file():
            built = Path(tmp) / spec.name
        verify(spec, built)
        dest.mkdir(parents=True, exist_ok=True)
        os.replace(built, dest / spec.name)


def ensure(name: str, *, announce: bool = False) -> Path:
    """Return the tool's path, building it first when it is not in the cache."""
    spec = _spec_or_error(name)
    if is_installed(spec):
        return _binary(spec)
    with _lock(spec.name):
        if is_installed(spec):
            return _binary(spec)
        dest = tool_dir(spec)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if announce:
            how = "go build in " + spec.wrapper if spec.wrapper else "go install"
            print(f"building {spec.name} {spec.version} ({how}, first run only)", flush=True)
        _build(spec, dest)
        (dest / STAMP).write_text(f"{spec.name} {spec.version}\n", encoding="utf-8")
    return _binary(spec)


def ensure_all(names: list[str] | None = None, *, announce: bool = False) -> dict[str, Path]:
    return {n: ensure(n, announce=announce) for n in (names or list(load_specs()))}


def status() -> list[ToolStatus]:
    return [
        ToolStatus(spec.name, spec.version, _binary(spec), is_installed(spec))
        for spec in load_specs().values()
    ]
