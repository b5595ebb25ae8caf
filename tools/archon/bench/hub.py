"""`archon bench hub`: the wall time of `archon preflight` for a model read from the Hub.

The loopback Hub simulation (archon.simulation.hub) stands in for huggingface.co; each run is a
whole `python -m archon preflight` in a process of its own, interpreter start included, with
`HF_ENDPOINT` on the simulation and `ARCHON_CACHE_DIR` in a temporary folder. Three kinds of run,
interleaved round by round so a busy machine weighs on each alike:

- uncached: a fresh cache folder each time and `--refresh` (a model the catalog knows is read
  from the Hub all the same): HEAD and GET of config.json, the safetensors index, the header
  range reads;
- cached: the same model from a cache filled beforehand (one untimed warm-up run first): it
  must make no request;
- catalog: the same model answered by the built-in catalog, a reference for what the
  interpreter and the estimate cost without any Hub read (only for a model the catalog lists).

Targets: uncached median < 2 s, cached median < 0.3 s, 0 requests from the cached runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from archon.arguments import positive_count
from archon.bench.base import BenchResult
from archon.errors import UsageError

RUNS = 5
MODEL = "Qwen/Qwen3-30B-A3B-FP8"  # the largest read the simulation serves: 7 shards of MoE headers
GPU = "RTX 5090"
MAX_MODEL_LEN = 8192
UNCACHED_TARGET_S = 2.0
CACHED_TARGET_S = 0.3
RUN_TIMEOUT_S = 120.0  # one preflight; only a hang gets near it
KINDS = ("uncached", "cached", "catalog")
SOURCE = {"uncached": "hub", "cached": "cache", "catalog": "catalog"}  # model_source expected


@dataclass
class Kind:
    """The timed runs of one kind, the requests they made of the Hub, and what went wrong."""

    name: str
    wall_s: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median_s(self) -> float | None:
        return statistics.median(self.wall_s) if self.wall_s else None

    def as_dict(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 3)

        return {
            "runs": len(self.wall_s),
            "min_s": r(min(self.wall_s, default=None)),
            "median_s": r(self.median_s()),
            "max_s": r(max(self.wall_s, default=None)),
            "wall_s": [round(s, 3) for s in self.wall_s],
            "source": SOURCE[self.name],
            "requests": sum(self.requests),
            "errors": self.errors,
        }


@dataclass
class Preflight:
    """`archon preflight -f values` as a user runs it, against the simulation at `url`."""

    values: Path
    url: str
    token: str
    pycache: Path | None  # where the runs keep their bytecode; None: compile every run

    def run(self, cache: Path, *, refresh: bool) -> tuple[float, int, str, str]:
        """Wall seconds, exit code, the model_source it reported ('' if none) and its last
        stderr line."""
        dropped = ("HF_HUB_OFFLINE", "HF_TOKEN", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        env = {k: v for k, v in os.environ.items() if k not in dropped}
        env.update(
            HF_ENDPOINT=self.url,
            # The simulation's token: a user's real one is never sent to it, and a gated model
            # the simulation serves opens.
            HF_TOKEN=self.token,
            HF_HOME=str(cache / "hf-home"),
            ARCHON_CACHE_DIR=str(cache),
        )
        if self.pycache is None:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            # An installed package has its bytecode compiled at install; a prefix in the
            # temporary folder gives the runs the same without writing into the package.
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        cmd = [sys.executable, "-m", "archon", "preflight", "-f", str(self.values)]
        cmd += ["--output", "json", *(["--refresh"] if refresh else [])]
        started = time.perf_counter()
        try:
            done = subprocess.run(
                cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired:
            return time.perf_counter() - started, -1, "", f"no answer in {RUN_TIMEOUT_S:.0f} s"
        wall = time.perf_counter() - started
        try:
            source = str(json.loads(done.stdout).get("model_source", ""))
        except (json.JSONDecodeError, AttributeError):
            source = ""
        lines = done.stderr.strip().splitlines()
        return wall, done.returncode, source, lines[-1] if lines else ""


def measure(
    model: str = MODEL,
    gpu: str = GPU,
    runs: int = RUNS,
    *,
    bytecode_cache: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Start the simulation, then time `runs` rounds of the three kinds of preflight."""
    from archon.preflight.catalog import load_catalog
    from archon.simulation.hub import TOKEN, HubSimulation, load_repos

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr, flush=True)

    repos = load_repos()
    if model not in repos:
        raise UsageError(
            f"the Hub simulation does not serve {model!r}",
            key="--model",
            fix=f"pass one of {', '.join(sorted(repos))}",
        )
    kinds = {name: Kind(name) for name in KINDS}
    if load_catalog().get(model) is None:
        del kinds["catalog"]
    sim = HubSimulation(repos).start()
    say(f"loopback Hub simulation at {sim.url}; {model} on {gpu}, {runs} round(s)")
    try:
        with tempfile.TemporaryDirectory(prefix="archon-bench-hub-") as tmp:
            root = Path(tmp)
            values = root / "values.yaml"
            values.write_text(
                yaml.safe_dump(
                    {
                        "gpu": {"profile": gpu},
                        "model": {"name": model, "quantization": "", "maxModelLen": MAX_MODEL_LEN},
                    }
                ),
                encoding="utf-8",
            )
            pycache = root / "pycache" if bytecode_cache else None
            preflight = Preflight(values, sim.url, TOKEN, pycache)
            warm = root / "warm"
            _, code, source, line = preflight.run(warm, refresh=True)
            if code not in (0, 1) or source != "hub":
                # The preflight's own one-line error (an unknown GPU profile, say) says it best.
                message, _, fix = line.removeprefix(f"{values}: ").partition("; fix: ")
                raise UsageError(
                    f"the preflight of {model} on {gpu} stopped (exit {code}): {message}",
                    key="--gpu" if message.startswith("gpu.") else "--model",
                    fix=fix or "run `archon preflight` with this model and GPU to see why",
                )
            preflight.run(warm, refresh=False)  # the first read of the cache, untimed
            for round_no in range(1, runs + 1):
                said: list[str] = []
                for kind in kinds.values():
                    cache = warm if kind.name == "cached" else root / f"{kind.name}-{round_no}"
                    before = sim.count
                    wall, code, source, line = preflight.run(cache, refresh=kind.name == "uncached")
                    if code not in (0, 1) or source != SOURCE[kind.name]:
                        kind.errors.append(
                            f"run {round_no}: exit {code}, source {source or 'none'}: {line}"
                        )
                        said.append(f"{kind.name} failed")
                        continue
                    kind.wall_s.append(wall)
                    kind.requests.append(sim.count - before)
                    said.append(f"{kind.name} {wall:.2f} s")
                say(f"round {round_no}/{runs}: {', '.join(said)}")
    finally:
        sim.close()
    uncached, cached = kinds["uncached"], kinds["cached"]
    figures: dict[str, Any] = {
        "model": model,
        "gpu": gpu,
        "runs": runs,
        "bytecode_cache": bytecode_cache,
        **{name: kind.as_dict() for name, kind in kinds.items()},
        "cached_requests": sum(cached.requests),
        "targets": {
            "uncached_median_s": UNCACHED_TARGET_S,
            "cached_median_s": CACHED_TARGET_S,
            "cached_requests": 0,
        },
    }
    u, c = uncached.median_s(), cached.median_s()
    figures["targets_met"] = {
        "uncached_median": u is not None and u < UNCACHED_TARGET_S and not uncached.errors,
        "cached_median": c is not None and c < CACHED_TARGET_S and not cached.errors,
        "cached_requests": bool(cached.wall_s) and sum(cached.requests) == 0,
    }
    return figures


def _lines(figures: dict[str, Any]) -> list[str]:
    lines = [
        f"archon preflight of {figures['model']} on {figures['gpu']} against the loopback Hub, "
        f"a whole process each (interpreter start included), {figures['runs']} run(s) per kind, "
        + (
            "bytecode cached as an installed package has it"
            if figures["bytecode_cache"]
            else "every run compiling the package from source"
        )
    ]
    for name in KINDS:
        kind = figures.get(name)
        if kind is None:
            lines.append(f"{name:<9} not run: the catalog does not list {figures['model']}")
            continue
        if kind["runs"]:
            lines.append(
                f"{name:<9} from the {kind['source']:<7} min {kind['min_s']:.3f} s, median "
                f"{kind['median_s']:.3f} s, max {kind['max_s']:.3f} s; {kind['requests']} "
                f"request(s) to the Hub ({kind['requests'] / kind['runs']:g} a run)"
            )
        lines += [f"{name:<9} {error}" for error in kind["errors"]]
    return lines


class HubBenchmark:
    name = "hub"
    help = (
        "wall time of `archon preflight` for a Hub model against the loopback Hub, uncached and "
        "cached (target: median < 2 s uncached, < 0.3 s cached, 0 requests when cached)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--runs",
            type=positive_count,
            default=RUNS,
            help="timed runs of each kind (default: %(default)s)",
        )
        parser.add_argument(
            "--model",
            default=MODEL,
            help="a repository the simulation serves (default: %(default)s)",
        )
        parser.add_argument(
            "--gpu", default=GPU, metavar="NAME", help="GPU profile (default: %(default)s)"
        )
        parser.add_argument(
            "--no-bytecode-cache",
            dest="bytecode_cache",
            action="store_false",
            help="compile the package from source in every run (PYTHONDONTWRITEBYTECODE=1), "
            "instead of keeping its bytecode as an installed package does",
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        figures = measure(args.model, args.gpu, args.runs, bytecode_cache=args.bytecode_cache)
        return BenchResult(
            name=self.name,
            target=f"uncached median < {UNCACHED_TARGET_S:g} s, cached median < "
            f"{CACHED_TARGET_S:g} s, 0 requests when cached",
            met=all(figures["targets_met"].values()),
            figures=figures,
            lines=_lines(figures),
        )


BENCHMARK = HubBenchmark()
