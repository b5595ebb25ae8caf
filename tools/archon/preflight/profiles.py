"""GPU profiles: the cards Archon knows, loaded from data files, found by forgiving name match."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archon.errors import UsageError
from archon.paths import data_file
from archon.preflight._yaml import load_yaml

BUILTIN_PROFILES = data_file("gpus", "profiles.yaml")
ENV_PROFILES = "ARCHON_GPU_PROFILES"

# torch.cuda.mem_get_info() reports less than nvidia-smi: 24576 MiB vs 23.58 GiB on a 3090,
# 81559 MiB vs 79.1 GiB on an H100: typically 0.3-0.9 GiB lower, as the public start-up logs in
# benchmarks/vllm-startups.jsonl show.
DEFAULT_VISIBLE_OFFSET_MIB = 450

MIB = 1024**2
GIB = 1024**3

_VENDORS = ("nvidia", "amd")
_ARCH = re.compile(r"^(sm_\d{2,3}|gfx[0-9a-f]{3,4})$")


def normalize_name(name: str) -> str:
    """'RTX 5080', 'rtx5080', 'GeForce RTX-5080' all compare equal after this."""
    text = re.sub(r"[\s_\-]+", "", name.lower())
    for prefix in ("nvidia", "geforce", "amd", "radeon", "tesla"):
        if text.startswith(prefix) and len(text) > len(prefix):
            text = text[len(prefix) :]
    return text


def compute_capability(arch: str) -> tuple[int, int] | None:
    """sm_89 -> (8, 9); sm_120 -> (12, 0); None for ROCm targets and unknown cards."""
    match = re.fullmatch(r"sm_(\d+)\w?", arch)
    if not match:
        return None
    number = int(match.group(1))
    return number // 10, number % 10


@dataclass(frozen=True)
class GpuProfile:
    name: str
    vendor: str
    arch: str
    memory_mib: int
    bandwidth_gbs: float
    desktop_mib: int = 0
    visible_mib: int | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""

    @property
    def visible_gib(self) -> float:
        """What vLLM multiplies by gpu_memory_utilization."""
        mib = self.visible_mib or (self.memory_mib - DEFAULT_VISIBLE_OFFSET_MIB)
        return mib * MIB / GIB

    @property
    def compute_capability(self) -> tuple[int, int] | None:
        return compute_capability(self.arch)

    @property
    def cc_text(self) -> str:
        cc = self.compute_capability
        return f"{cc[0]}.{cc[1]}" if cc else self.arch

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vendor": self.vendor,
            "arch": self.arch,
            "memory_mib": self.memory_mib,
            "visible_gib": round(self.visible_gib, 2),
            "bandwidth_gbs": self.bandwidth_gbs,
            "desktop_mib": self.desktop_mib,
            "aliases": list(self.aliases),
            "source": self.source,
        }


def _profile_from_entry(entry: Any, where: str) -> GpuProfile:
    if not isinstance(entry, dict):
        raise UsageError(
            "each entry under `gpus` must be a mapping",
            source=where,
            fix="write entries as `- name: ...` blocks",
        )
    name = entry.get("name")
    label = f"gpus[{name!r}]" if name else "gpus[]"

    def need(key: str, kind: type | tuple[type, ...]) -> Any:
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise UsageError(
                f"`{key}` is {value!r}",
                key=f"{label}.{key}",
                source=where,
                fix=f"set `{key}` (see tools/archon/data/gpus/profiles.yaml for the format)",
            )
        return value

    name = need("name", str)
    vendor = need("vendor", str).lower()
    if vendor not in _VENDORS:
        raise UsageError(
            f"vendor {vendor!r} is not nvidia or amd",
            key=f"{label}.vendor",
            source=where,
            fix="set vendor: nvidia or vendor: amd",
        )
    arch = need("arch", str).lower()
    if not _ARCH.match(arch):
        raise UsageError(
            f"arch {arch!r} is not like sm_89 or gfx1100",
            key=f"{label}.arch",
            source=where,
            fix="give the CUDA compute capability or the gfx target",
        )
    memory = need("memory_mib", int)
    if memory <= 0:
        raise UsageError(
            f"memory_mib {memory} must be positive",
            key=f"{label}.memory_mib",
            source=where,
            fix="give the total memory in MiB as nvidia-smi shows it",
        )
    bandwidth = need("bandwidth_gbs", (int, float))
    visible = entry.get("visible_mib")
    if visible is not None and (not isinstance(visible, int) or not 0 < visible <= memory):
        raise UsageError(
            f"visible_mib {visible!r} must be between 1 and memory_mib",
            key=f"{label}.visible_mib",
            source=where,
            fix="drop it or correct it",
        )
    desktop = entry.get("desktop_mib", 0)
    if not isinstance(desktop, int) or desktop < 0:
        raise UsageError(
            f"desktop_mib {desktop!r} must be a non-negative integer",
            key=f"{label}.desktop_mib",
            source=where,
            fix="use 0 for a headless card",
        )
    aliases = entry.get("aliases") or []
    return GpuProfile(
        name=name,
        vendor=vendor,
        arch=arch,
        memory_mib=memory,
        bandwidth_gbs=float(bandwidth),
        desktop_mib=desktop,
        visible_mib=visible,
        aliases=tuple(str(a) for a in aliases),
        source=str(entry.get("source", where)),
    )


def read_profiles_file(path: str | Path) -> list[GpuProfile]:
    data = load_yaml(path)
    entries = data.get("gpus") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UsageError(
            "no `gpus:` list found",
            source=str(path),
            fix="write a top-level `gpus:` list of profiles",
        )
    return [_profile_from_entry(entry, str(path)) for entry in entries]


class ProfileSet:
    """All known profiles; later files override earlier ones by name."""

    def __init__(self, profiles: Iterable[GpuProfile]) -> None:
        self._by_key: dict[str, GpuProfile] = {}
        self._order: list[str] = []
        for profile in profiles:
            self.add(profile)

    def add(self, profile: GpuProfile) -> None:
        """A profile named like a known one (by name or alias) replaces it, aliases and all."""
        key = normalize_name(profile.name)
        replaced = self._by_key.get(key)
        if replaced is not None:
            old_keys = [k for k, v in self._by_key.items() if v is replaced]
            for old in old_keys:
                del self._by_key[old]
            self._order = [k for k in self._order if k not in old_keys]
        self._order.append(key)
        self._by_key[key] = profile
        for alias in profile.aliases:
            self._by_key.setdefault(normalize_name(alias), profile)

    def __iter__(self) -> Any:
        return iter(self._by_key[key] for key in self._order)

    def __len__(self) -> int:
        return len(self._order)

    def get(self, name: str) -> GpuProfile | None:
        return self._by_key.get(normalize_name(name))

    def find(self, name: str, *, key: str = "gpu.profile") -> GpuProfile:
        profile = self.get(name)
        if profile is not None:
            return profile
        wanted = normalize_name(name)
        close = sorted({p.name for k, p in self._by_key.items() if wanted and wanted in k})
        hint = f" (did you mean {', '.join(close[:4])}?)" if close else ""
        raise UsageError(
            f"unknown GPU {name!r}{hint}",
            key=key,
            fix="run `archon gpus` for the known cards, or add yours with --gpu-profiles FILE",
        )


def load_profiles(extra_files: Iterable[str | Path] = ()) -> ProfileSet:
    """Built-in profiles, then $ARCHON_GPU_PROFILES (os.pathsep-separated), then extra files."""
    files: list[str | Path] = [BUILTIN_PROFILES]
    env = os.environ.get(ENV_PROFILES, "")
    files.extend(part for part in env.split(os.pathsep) if part)
    files.extend(extra_files)
    profiles: list[GpuProfile] = []
    for file in files:
        profiles.extend(read_profiles_file(file))
    return ProfileSet(profiles)
