"""The GitOps step of the demo: the shipped ArgoCD Application applied, synced and followed to
Healthy, then the shipped Tekton pipeline run followed to Succeeded, on the local cluster.

The local cluster has the real ArgoCD and Tekton CRDs but no controllers: the ArgoCD and Tekton
SIMULATIONs (archon.simulation) play them inside this process, and say so.
"""

from __future__ import annotations

from typing import TextIO

from archon.errors import ArchonError

SYNC_TIMEOUT_S = 180.0
PIPELINE_TIMEOUT_S = 420.0
# The helm release the demo already deployed on the AMD node: the pipeline upgrades it in
# place (same values), so it needs no second GPU.
PIPELINE_PARAMS = {"values": "values/rx7900xtx.yaml", "namespace": "archon-amd"}


def gitops_step(out: TextIO) -> str:
    from archon.cluster.lifecycle import local_target
    from archon.gitops import argocd, tekton
    from archon.gitops.objects import load_documents
    from archon.gitops.setup import install_gitops
    from archon.kube.rest import Kube
    from archon.simulation.argocd import ArgoSimulation
    from archon.simulation.tekton import TektonSimulation

    target = local_target()
    print(target.describe(), file=out)
    kube = Kube(target.api_client())
    install_gitops(kube, out=out)
    root = argocd.checkout_root()

    # The Application deploys the rtx5080 profile as release `archon` in archon-system, where
    # the demo's `archon deploy` put it: ArgoCD adopts those objects (server-side apply).
    docs = argocd.shipped_documents(argocd.AppParams())
    for name in argocd.apply(kube, docs, argocd.DEFAULT_NAMESPACE):
        print(f"{name} applied (server-side)", file=out)
    app = next(d["metadata"]["name"] for d in docs if d["kind"] == "Application")
    with ArgoSimulation(kube, repo_root=root, out=out):
        if not argocd.get_app(kube, argocd.DEFAULT_NAMESPACE, app).get("operation"):
            argocd.sync(kube, argocd.DEFAULT_NAMESPACE, app, argocd.sync_body())
            print(f"sync requested for application {app!r}", file=out)
        synced, watch = argocd.follow_app(
            kube,
            argocd.DEFAULT_NAMESPACE,
            app,
            want_operation=True,
            timeout_s=SYNC_TIMEOUT_S,
            out=out,
        )
    if not synced.ok:
        raise ArchonError(f"application {app!r}: {synced.reason}; {watch.explain()}")

    namespace = tekton.DEFAULT_NAMESPACE
    for name in tekton.apply_documents(
        kube, tekton.folder_documents(root / "ci" / "tekton"), namespace
    ):
        print(f"{name} applied (server-side)", file=out)
    template = load_documents(root / "ci" / "tekton" / "pipelinerun.yaml")[0]
    declared = list(tekton.pipeline_spec(kube, template, namespace).get("params") or [])
    body = tekton.build_run(
        template,
        pipeline="",
        params=PIPELINE_PARAMS,
        workspaces=[],
        declared=declared,
        namespace=namespace,
    )
    with TektonSimulation(kube, namespace=namespace, target=target, repo_root=root, out=out):
        run = str(tekton.create(kube, body)["metadata"]["name"])
        print(f"pipelinerun/{run} created in namespace {namespace!r}", file=out)
        ran, _ = tekton.follow_run(kube, namespace, run, timeout_s=PIPELINE_TIMEOUT_S, out=out)
    if not ran.ok:
        raise ArchonError(f"pipelinerun {run!r}: {ran.reason}")
    return (
        f"application {app!r} Synced and Healthy in {synced.elapsed_s:.1f} s; pipelinerun "
        f"{run!r} Succeeded in {ran.elapsed_s:.1f} s (ArgoCD and Tekton SIMULATIONs)"
    )
