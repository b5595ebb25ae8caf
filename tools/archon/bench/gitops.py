"""`archon bench gitops`: `archon argocd sync` to Healthy and a Tekton run to Succeeded over the
SIMULATED controllers on a local cluster of its own, and the toolkit's CPU cost per poll cycle.

The poll cost is what following costs the user's machine on every cycle: one poll of the API
(the Application or the PipelineRun with its TaskRuns, plus pods and nodes) and the rendering of
the snapshot into lines, in CPU time (time.process_time) over N cycles, measured after the
simulations stopped so their threads are not counted. Target: under 100 ms CPU per cycle.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from collections.abc import Callable

from archon.bench.base import BenchResult
from archon.kube.follow import Snapshot

POLL_TARGET_MS = 100.0
CLUSTER = "archon-bench-gitops"
APP = "bench"
DEST_NAMESPACE = "archon-rtx5080"  # a destination the shipped AppProject allows


class GitopsBenchmark:
    name = "gitops"
    help = "argocd sync to Healthy, tekton run to Succeeded (simulated controllers), poll CPU"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--cycles", type=int, default=50, help="poll cycles timed for the CPU figure"
        )
        parser.add_argument(
            "--keep", action="store_true", help="leave the bench cluster running afterwards"
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        previous = os.environ.get("ARCHON_CLUSTER")
        os.environ["ARCHON_CLUSTER"] = CLUSTER  # its own cluster: the user's stays untouched
        try:
            return self._run(args)
        finally:
            if not args.keep:
                from archon.cluster.lifecycle import down

                down(out=io.StringIO())
            if previous is None:
                os.environ.pop("ARCHON_CLUSTER", None)
            else:
                os.environ["ARCHON_CLUSTER"] = previous

    def _run(self, args: argparse.Namespace) -> BenchResult:
        from archon.cluster.lifecycle import local_target, up
        from archon.gitops import argocd, tekton
        from archon.gitops.objects import load_documents
        from archon.gitops.setup import install_gitops
        from archon.kube.rest import Kube
        from archon.simulation.argocd import ArgoSimulation
        from archon.simulation.tekton import TektonSimulation

        quiet = io.StringIO()
        timings: dict[str, float] = {}
        start = time.perf_counter()
        up(None, out=quiet)
        target = local_target()
        kube = Kube(target.api_client())
        install_gitops(kube, out=quiet)
        timings["cluster up + CRDs (untimed target)"] = time.perf_counter() - start
        root = argocd.checkout_root()

        params = argocd.AppParams(name=APP, dest_namespace=DEST_NAMESPACE)
        docs = argocd.shipped_documents(params)
        argocd.apply(kube, docs, argocd.DEFAULT_NAMESPACE)
        with ArgoSimulation(kube, repo_root=root, out=quiet):
            start = time.perf_counter()
            argocd.sync(kube, argocd.DEFAULT_NAMESPACE, APP, argocd.sync_body())
            synced, app_watch = argocd.follow_app(
                kube, argocd.DEFAULT_NAMESPACE, APP, want_operation=True, timeout_s=180, out=quiet
            )
            timings["argocd sync -> Healthy"] = time.perf_counter() - start

        namespace = tekton.DEFAULT_NAMESPACE
        tekton.apply_documents(kube, tekton.folder_documents(root / "ci" / "tekton"), namespace)
        template = load_documents(root / "ci" / "tekton" / "pipelinerun.yaml")[0]
        declared = list(tekton.pipeline_spec(kube, template, namespace).get("params") or [])
        body = tekton.build_run(
            template,
            pipeline="",
            params={"values": "values/rx7900xtx.yaml", "namespace": "archon-bench-ci"},
            workspaces=[],
            declared=declared,
            namespace=namespace,
        )
        with TektonSimulation(kube, namespace=namespace, target=target, repo_root=root, out=quiet):
            start = time.perf_counter()
            run = str(tekton.create(kube, body)["metadata"]["name"])
            ran, run_watch = tekton.follow_run(kube, namespace, run, timeout_s=420, out=quiet)
            timings["tekton run -> Succeeded"] = time.perf_counter() - start

        def cpu_per_cycle(poll: Callable[[], Snapshot]) -> float:
            cycles = max(1, int(args.cycles))
            begin = time.process_time()
            for _ in range(cycles):
                snap: Snapshot = poll()
                for text in snap.lines.values():
                    quiet.write(f"  [{0.0:5.1f}s] {text}\n")
            return (time.process_time() - begin) / cycles * 1000

        poll_ms = {
            "argocd poll+render": cpu_per_cycle(app_watch.snapshot),
            "tekton poll+render": cpu_per_cycle(run_watch.snapshot),
        }
        met = synced.ok and ran.ok and max(poll_ms.values()) < POLL_TARGET_MS
        lines = [f"{name:<36} {seconds:7.2f} s" for name, seconds in timings.items()]
        lines += [f"{name:<36} {ms:7.2f} ms CPU per cycle" for name, ms in poll_ms.items()]
        if not synced.ok:
            lines.append(f"argocd: {synced.reason}")
        if not ran.ok:
            lines.append(f"tekton: {ran.reason}")
        lines.append("controllers: ArgoCD and Tekton SIMULATIONs (archon.simulation)")
        return BenchResult(
            name=self.name,
            target=f"synced and succeeded, poll+render < {POLL_TARGET_MS:.0f} ms CPU per cycle",
            met=met,
            figures={
                "timings_s": {k: round(v, 2) for k, v in timings.items()},
                "poll_cpu_ms": {k: round(v, 2) for k, v in poll_ms.items()},
                "cycles": args.cycles,
                "synced": synced.ok,
                "succeeded": ran.ok,
            },
            lines=lines,
        )


BENCHMARK = GitopsBenchmark()
