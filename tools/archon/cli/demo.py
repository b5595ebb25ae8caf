"""`archon demo`: the main job. Bootstrap, check every shipped profile, render the default chart,
and (when the local cluster is available) deploy onto it; end with a one-screen summary."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError
from archon.optional import feature


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("demo", help="the main job: bootstrap, check, render (and deploy)")
    parser.add_argument(
        "--no-cluster", action="store_true", help="stop after rendering; no local cluster"
    )
    parser.set_defaults(handler=run)


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def _done(start: float) -> str:
    return f"{time.perf_counter() - start:.2f} s"


def _profiles() -> list[Path]:
    from archon.paths import repo_root

    return sorted((repo_root() / "values").glob("*.yaml"))


def _check_profile(path: Path) -> tuple[bool, str]:
    from archon.lint import schema_problems
    from archon.render import render_chart
    from archon.validate import validate_manifest
    from archon.values import load_values

    values = load_values([path])
    problems = schema_problems(values, source=str(path))
    if problems:
        return False, problems[0].line()
    verdict = ""
    check_values = feature("archon.preflight", "check_values")
    if check_values is not None and (values.get("gpu") or {}).get("profile"):
        report = check_values(values, source=str(path))
        figures = report.as_dict()
        verdict = (
            f"preflight {report.verdict} on {figures.get('gpu')}: "
            f"{figures.get('kv_cache_tokens')} KV tokens, "
            f"max concurrency {figures.get('max_concurrency')}"
        )
        if report.verdict == "FAIL":
            return False, verdict + "; " + "; ".join(p.line() for p in report.problems)
    results = validate_manifest(render_chart([path]).manifest)
    bad = [r for r in results if not r.ok]
    if bad:
        return False, f"{bad[0].kind}/{bad[0].name}: {bad[0].message}"
    return True, f"schema ok, {len(results)} resources valid" + (f", {verdict}" if verdict else "")


def _summary(objects: list[dict[str, Any]]) -> list[str]:
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


def run(args: argparse.Namespace) -> int:
    from archon.render import render_chart
    from archon.toolchain import ensure_all, ensure_schemas

    failures = 0
    start = _step("toolchain (pinned, cached under ~/.cache/archon)")
    for name, path in ensure_all(announce=True).items():
        print(f"  {name}: {path}")
    print(f"  schemas: {ensure_schemas()}  [{_done(start)}]")

    start = _step("profiles in values/: schema, preflight, render + kubeconform -strict")
    for path in _profiles():
        try:
            ok, detail = _check_profile(path)
        except ArchonError as exc:
            ok, detail = False, exc.line()
        failures += 0 if ok else 1
        print(f"  {'ok  ' if ok else 'FAIL'} {path.name}: {detail}", flush=True)
    print(f"  [{_done(start)}]")

    start = _step("default chart")
    rendered = render_chart([])
    for line in _summary(rendered.objects):
        print(f"  {line}")
    print(f"  [{_done(start)}]")

    if not args.no_cluster:
        run_cluster_demo = feature("archon.cluster.demo", "run_cluster_demo")
        if run_cluster_demo is not None:
            failures += 0 if run_cluster_demo() == EXIT_OK else 1

    print(f"\n== summary: {len(_profiles())} profiles checked, {failures} failure(s)")
    return EXIT_OK if failures == 0 else EXIT_PROBLEMS
