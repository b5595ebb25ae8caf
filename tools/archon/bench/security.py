"""`archon bench security`: every scenario and profile scanned by kube-score and checkov
(findings left after the chart's reasoned annotations), admitted or refused by Pod Security
`restricted` on the real local kube-apiserver, and what an unauthenticated request from outside
the namespace can reach, read from the rendered NetworkPolicies, Services and Ingress.

Target: no finding left by either scanner, every pod admitted, and nothing reachable without a
key with the chart defaults.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from archon.bench.base import BenchResult
from archon.bench.render import scenario_files
from archon.render import Rendered, render_chart

TARGET = (
    "0 kube-score and 0 checkov findings on every scenario, every pod admitted under Pod "
    "Security restricted, nothing reachable without a key from outside the namespace (defaults)"
)


def _pods(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pods = []
    for obj in objects:
        if obj["kind"] == "Pod":
            pods.append(obj)
        elif obj["kind"] in ("Deployment", "Job"):
            template = obj["spec"]["template"]
            meta = {"name": f"{obj['kind'].lower()}-{obj['metadata']['name']}"[:63]}
            pods.append(
                {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}
            )
    return pods


def _pod_security(rendered: dict[str, Rendered]) -> dict[str, str]:
    """Each scenario's pods, created with dryRun in a namespace enforcing `restricted`."""
    from archon.cluster.lifecycle import cluster_status, down, up
    from archon.kube.client import api_client
    from archon.kube.rest import Kube, KubeError

    # a namespace of its own per run: the previous run's may still be terminating
    namespace = f"bench-pod-security-{os.getpid()}"
    started = not cluster_status().running
    info = up(None, out=io.StringIO())
    kube = Kube(api_client(info.kubeconfig))
    labels = {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    kube.create_or_merge("/api/v1/namespaces", {"metadata": {"name": namespace, "labels": labels}})
    results: dict[str, str] = {}
    try:
        for name, one in rendered.items():
            refused = []
            for pod in _pods(one.objects):
                pod = json.loads(json.dumps(pod))
                pod["metadata"]["namespace"] = namespace
                account = pod["spec"].get("serviceAccountName")
                if account:
                    kube.create_or_merge(
                        f"/api/v1/namespaces/{namespace}/serviceaccounts",
                        {"metadata": {"name": account}},
                    )
                try:
                    kube.create(f"/api/v1/namespaces/{namespace}/pods", pod, dry_run=True)
                except KubeError as exc:
                    refused.append(f"{pod['metadata']['name']}: {exc.message[:160]}")
            results[name] = "admitted" if not refused else "refused: " + "; ".join(refused)
    finally:
        kube.delete(f"/api/v1/namespaces/{namespace}")
        if started:  # leave the machine as it was
            down(out=io.StringIO())
    return results


class SecurityBenchmark:
    name = "security"
    help = "scanner findings, Pod Security restricted and unauthenticated reach per scenario"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--no-pod-security",
            action="store_true",
            help="skip the Pod Security check (it starts the local cluster)",
        )

    def run(self, args: argparse.Namespace) -> BenchResult:
        from archon.security.exposure import unauthenticated_reach
        from archon.security.scanners import checkov, kube_score

        files = scenario_files()
        rendered = {path.name: render_chart([path]) for path in files}
        rendered["(chart defaults)"] = render_chart([])
        scenarios: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="archon-bench-security-") as tmp:
            for name, one in rendered.items():
                manifest = Path(tmp) / "manifest.yaml"
                manifest.write_text(one.manifest, encoding="utf-8")
                found = [*kube_score(manifest), *checkov(manifest)]
                scenarios[name] = {
                    "kube_score": sum(1 for f in found if f.tool == "kube-score"),
                    "checkov": sum(1 for f in found if f.tool == "checkov"),
                    "findings": [f.line() for f in found],
                    "unauthenticated_reach": [e.line() for e in unauthenticated_reach(one.objects)],
                }
        if not args.no_pod_security:
            for name, verdict in _pod_security(rendered).items():
                scenarios[name]["pod_security"] = verdict
        defaults_reach = scenarios["(chart defaults)"]["unauthenticated_reach"]
        met = (
            all(s["kube_score"] == 0 and s["checkov"] == 0 for s in scenarios.values())
            and all(s.get("pod_security", "admitted") == "admitted" for s in scenarios.values())
            and not defaults_reach
        )
        lines = [f"{'scenario':32} {'kube-score':>10} {'checkov':>8}  pod security  reach"]
        for name, s in scenarios.items():
            reach = "; ".join(s["unauthenticated_reach"]) or "nothing"
            lines.append(
                f"{name:32} {s['kube_score']:>10} {s['checkov']:>8}  "
                f"{s.get('pod_security', 'skipped')[:12]:12}  {reach}"
            )
            lines.extend(f"    {line}" for line in s["findings"])
        figures = {
            "scenarios": len(scenarios),
            "kube_score_findings": sum(s["kube_score"] for s in scenarios.values()),
            "checkov_findings": sum(s["checkov"] for s in scenarios.values()),
            "defaults_unauthenticated_reach": defaults_reach,
            "per_scenario": scenarios,
        }
        return BenchResult(self.name, TARGET, met, figures, lines)


BENCHMARK = SecurityBenchmark()
