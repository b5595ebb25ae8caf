"""Tool pins, read from data/toolchain.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from archon.paths import data_file


@dataclass(frozen=True)
class ToolSpec:
    name: str
    package: str
    version: str
    ldflags: tuple[str, ...] = ()
    version_args: tuple[str, ...] = ("version",)
    version_expect: str = "{version}"
    # A wrapper module to build from instead of `go install pkg@version` (a folder holding go.mod,
    # shipped under archon/data, e.g. "gomod/kubernetes"): needed where the module cannot be
    # installed directly (k8s.io/kubernetes' staging replaces).
    wrapper: str = ""
    # Extra environment for the build (for example GOTOOLCHAIN when a module needs a newer Go).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def binary_name(self) -> str:
        return self.package.rstrip("/").rsplit("/", 1)[-1]

    def render(self, text: str) -> str:
        return text.replace("{version}", self.version)

    def wrapper_dir(self) -> Path | None:
        return data_file(*self.wrapper.split("/")) if self.wrapper else None


def _spec(name: str, raw: dict[str, Any]) -> ToolSpec:
    return ToolSpec(
        name=name,
        package=raw["package"],
        version=raw["version"],
        ldflags=tuple(raw.get("ldflags", ())),
        version_args=tuple(raw.get("version_args", ("version",))),
        version_expect=raw.get("version_expect", "{version}"),
        wrapper=raw.get("wrapper", ""),
        env=dict(raw.get("env", {})),
    )


@cache
def _raw() -> dict[str, Any]:
    with data_file("toolchain.json").open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def load_specs() -> dict[str, ToolSpec]:
    return {name: _spec(name, raw) for name, raw in _raw()["tools"].items()}


def kubernetes_version() -> str:
    return str(_raw()["kubernetes_schemas"]["kubernetes_version"])
