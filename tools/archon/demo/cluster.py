"""The main job on the local cluster: up, preflight + deploy the NVIDIA and the AMD profile, show
where they landed, smoke-test the OpenAI API against the vLLM simulation, one-screen summary.

No GPU here: the pods are kwok's, and the HTTP answers come from archon.simulation, which says
it is a simulation. What is real: the API server's admission, the scheduler's GPU placement,
helm's install with --wait, the PVC binding and the kubeconfig.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from archon.errors import EXIT_OK, EXIT_PROBLEMS, ArchonError
from archon.helm import DEFAULT_NAMESPACE, DEFAULT_RELEASE
from archon.paths import profiles_dir


@dataclass(frozen=True)
class Target:
    label: str
    values: str  # a shipped profile (archon.paths.profiles_dir)
    namespace: str
    vendor_label: str  # the node label that must be on the node the pod lands on


TARGETS = (
    Target("NVIDIA RTX 5080", "rtx5080.yaml", DEFAULT_NAMESPACE, "nvidia.com/gpu.product"),
    Target("AMD RX 7900 XTX", "rx7900xtx.yaml", "archon-amd", "amd.com/gpu.product-name"),
)
RELEASE = DEFAULT_RELEASE
DEPLOY_TIMEOUT_S = 180


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    detail: str


def _run(name: str, steps: list[Step], out: TextIO, action: Callable[[], str]) -> bool:
    print(f"\n== {name}", file=out, flush=True)
    start = time.perf_counter()
    try:
        detail = action()
        ok = True
    except ArchonError as exc:
        detail, ok = exc.line(), False
        print(detail, file=out)
    steps.append(Step(name, ok, time.perf_counter() - start, detail))
    return ok


def _http_json(url: str, body: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, headers={"content-type": "application/json"} if data else {}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), str(response.headers.get("x-archon-simulation"))


def smoke(model: str, out: TextIO) -> str:
    from archon.simulation import SimulationConfig, serve

    with serve(SimulationConfig(model=model)) as sim:
        print(
            f"vLLM SIMULATION on {sim.url} (archon.simulation: no GPU and no vLLM here; it "
            "answers with vLLM's OpenAI API shapes)",
            file=out,
        )
        models, flag = _http_json(f"{sim.url}/v1/models")
        served = [m["id"] for m in models["data"]]
        print(f"GET /v1/models -> {served} (x-archon-simulation: {flag})", file=out)
        chat, _ = _http_json(
            f"{sim.url}/v1/chat/completions",
            {
                "model": model,
                "messages": [{"role": "user", "content": "write hello world in Go"}],
                "max_tokens": 16,
            },
        )
        text = chat["choices"][0]["message"]["content"]
        print(f"POST /v1/chat/completions -> {text!r}", file=out)
    if served != [model]:
        raise ArchonError(f"/v1/models listed {served}, expected [{model!r}]")
    return f"simulation answered /v1/models and one chat completion ({len(text.split())} words)"


def _check_placement(target: Target) -> None:
    """The pod must sit on a node carrying the vendor's label (the scheduler put it there)."""
    from archon.cluster.lifecycle import local_target
    from archon.deploy.progress import ReleaseWatch
    from archon.kube.rest import Kube

    watch = ReleaseWatch(Kube(local_target().api_client()), target.namespace, RELEASE)
    nodes = watch.nodes()
    for pod in watch.pods():
        node = nodes.get((pod.get("spec") or {}).get("nodeName") or "", {})
        if target.vendor_label not in (node.get("metadata") or {}).get("labels", {}):
            raise ArchonError(
                f"{pod['metadata']['name']} landed on {node.get('metadata', {}).get('name')}, "
                f"a node without {target.vendor_label}"
            )


def _served_model(values_file: Path) -> str:
    from archon.values import ValuesSet, get_path

    values = ValuesSet.read([values_file]).merged
    return str(get_path(values, "model.servedModelName") or get_path(values, "model.name"))


def run_cluster_demo(out: TextIO | None = None) -> int:
    stream = out if out is not None else sys.stdout
    from archon.cluster.lifecycle import local_target, up
    from archon.deploy.install import DeployOptions, deploy
    from archon.deploy.status import print_status, release_status

    steps: list[Step] = []
    root = profiles_dir()

    def cluster_up() -> str:
        info = up(None, out=stream)
        nodes = ", ".join(f"{n.name} ({n.resource} x{n.capacity})" for n in info.nodes)
        return f"Kubernetes {info.version}, nodes: {nodes}"

    if not _run("cluster up (RTX 5080 + RX 7900 XTX fake nodes)", steps, stream, cluster_up):
        return _summary(steps, stream)

    for target in TARGETS:
        values_file = root / target.values

        def install(target: Target = target, values_file: Path = values_file) -> str:
            opts = DeployOptions(
                [values_file],
                namespace=target.namespace,
                release=RELEASE,
                target=local_target(),
                timeout_s=DEPLOY_TIMEOUT_S,
            )
            result = deploy(opts, out=stream)
            report = release_status(local_target(), target.namespace, RELEASE)
            print_status(report, stream)
            _check_placement(target)
            placed = "; ".join(report.pods)
            return (
                f"{result.preflight or 'preflight n/a'}; revision {result.revision} "
                f"{result.status} in {result.elapsed_s:.1f} s; {placed}"
            )

        _run(
            f"deploy {target.label} ({target.values} -> {target.namespace})", steps, stream, install
        )

    model = _served_model(root / TARGETS[0].values)
    _run("smoke requests (vLLM simulation)", steps, stream, lambda: smoke(model, stream))
    from archon.demo.gitops import gitops_step

    _run(
        "GitOps: ArgoCD sync to Healthy, Tekton pipeline to Succeeded (SIMULATED controllers)",
        steps,
        stream,
        lambda: gitops_step(stream),
    )
    return _summary(steps, stream)


def _summary(steps: list[Step], out: TextIO) -> int:
    print("\n== summary (local cluster; pods by kwok, answers by the vLLM simulation)", file=out)
    for step in steps:
        mark = "ok  " if step.ok else "FAIL"
        print(f"{mark} {step.seconds:6.1f} s  {step.name}", file=out)
        print(f"     {step.detail[:300]}", file=out)
    print(
        "the cluster keeps running: `archon status -n archon-amd`, `archon uninstall`, "
        "`archon cluster down` stops it",
        file=out,
    )
    return EXIT_OK if all(s.ok for s in steps) else EXIT_PROBLEMS
