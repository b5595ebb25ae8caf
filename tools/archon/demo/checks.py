"""The demo's offline part: toolchain, every profile through schema and preflight, the seed's
mistake caught, render + kubeconform of every profile, the default chart summarized."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

from archon.demo.cluster import run_cluster_demo
from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError
from archon.paths import profiles_dir
from archon.preflight import check_values
from archon.render import render_values
from archon.schema import schema_problems
from archon.toolchain import ensure_all, ensure_schemas
from archon.validate import validate_scenarios
from archon.values import ValuesSet


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(start: float) -> str:
    return f"{time.perf_counter() - start:.2f} s"


def lint_profile(values: ValuesSet) -> tuple[bool, str]:
    """Schema, then the preflight verdict with its headline figures."""
    problems = schema_problems(values.merged, source=values.source, chart=values.chart)
    if problems:
        return False, problems[0].line()
    if not (values.merged.get("gpu") or {}).get("profile"):
        return True, "schema ok"
    report = check_values(values.merged, source=values.source)
    figures = report.as_dict()
    verdict = (
        f"schema ok, preflight {report.verdict} on {figures.get('gpu')}: "
        f"{figures.get('kv_cache_tokens')} KV tokens, "
        f"max concurrency {figures.get('max_concurrency')}"
    )
    if report.verdict == "FAIL":
        return False, verdict + "; " + "; ".join(p.line() for p in report.problems)
    return True, verdict


def summary(objects: list[dict[str, Any]]) -> list[str]:
    kinds = Counter(o.get("kind", "?") for o in objects)
    lines = ["objects: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))]
    for deploy in (o for o in objects if o.get("kind") == "Deployment"):
        spec = deploy["spec"]
        pod = spec["template"]["spec"]
        main = pod["containers"][0]
        limits = (main.get("resources") or {}).get("limits") or {}
        gpus = {k: v for k, v in limits.items() if k.endswith("/gpu")}
        startup = main.get("startupProbe") or {}
        budget = startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3)
        lines.append(
            f"{deploy['metadata']['name']}: image {main['image']}, GPU {gpus or 'none'}, "
            f"strategy {spec.get('strategy', {}).get('type', 'RollingUpdate')}, "
            f"startup budget {budget // 60} min"
        )
    return lines


def run_demo(*, cluster: bool = True) -> int:
    failures = 0
    start = _step("toolchain (pinned, cached under ~/.cache/archon)")
    for name, path in ensure_all(["helm", "kubeconform"], announce=True).items():
        print(f"  {name}: {path}")
    print(f"  schemas: {ensure_schemas()}  [{_done(start)}]")

    start = _step("profiles in values/: schema and preflight")
    profiles: list[Path] = sorted(profiles_dir().glob("*.yaml"))
    for path in profiles:
        try:
            ok, detail = lint_profile(ValuesSet.read([path]))
        except ArchonError as exc:
            ok, detail = False, exc.line()
        failures += 0 if ok else 1
        print(f"  {'ok  ' if ok else 'FAIL'} {path.name}: {detail}", flush=True)
    print(f"  [{_done(start)}]")

    defaults = ValuesSet.read([])
    start = _step("preflight on the seed's setup: 14B GPTQ, 8192 tokens, on a 12 GB RTX 5070")
    report = check_values(defaults.merged, gpu="RTX 5070", source="chart defaults")
    # The seed assumed a 16 GB RTX 5070; the real card has 12 GB and this must be caught.
    caught = report.verdict == "FAIL"
    failures += 0 if caught else 1
    print(f"  {'ok  ' if caught else 'MISSED'} verdict {report.verdict} (expected FAIL)")
    for problem in report.problems:
        print(f"       {problem.line()}")
    print(f"  [{_done(start)}]")

    start = _step("render + kubeconform -strict (offline schemas), every profile")
    for result in validate_scenarios(list(profiles)):
        failures += 0 if result.ok else 1
        bad = [f"{r.kind}/{r.name}: {r.message}" for r in result.resources if not r.ok]
        detail = result.error or "; ".join(bad) or f"{len(result.resources)} resources valid"
        print(f"  {'ok  ' if result.ok else 'FAIL'} {Path(result.file).name}: {detail}")
    print(f"  [{_done(start)}]")

    start = _step("default chart")
    for line in summary(render_values(defaults).objects):
        print(f"  {line}")
    print(f"  [{_done(start)}]")

    if cluster:
        failures += 0 if run_cluster_demo() == EXIT_OK else 1

    print(f"\n== summary: {len(profiles)} profiles checked, {failures} failure(s)")
    return EXIT_OK if failures == 0 else EXIT_PROBLEMS
