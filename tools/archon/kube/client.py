"""A kubernetes ApiClient for one kubeconfig file, and waiting for the API to answer.

Which cluster a command acts on is decided in archon.kube.config (kubectl's order)."""

from __future__ import annotations

import time
from pathlib import Path

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from archon.errors import ArchonError
from archon.kube.config import resolve_target


def api_client(kubeconfig: str | Path, context: str | None = None) -> client.ApiClient:
    """A client for one explicit kubeconfig file (the local cluster's, or --kubeconfig)."""
    return resolve_target(Path(kubeconfig), context).api_client()


def wait_for_api(api: client.ApiClient, *, timeout_s: float = 30.0) -> None:
    """Block until the API server answers `/version`.

    `/version` is readable by every authenticated user (the `system:public-info-viewer` role),
    so a least-privilege account such as the Tekton deploy task's needs no grant for it.
    """
    version = client.VersionApi(api)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            version.get_code(_request_timeout=5)
            return
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.5)
    raise ArchonError(
        f"the Kubernetes API did not answer within {timeout_s:.0f} s ({last})",
        fix="run `archon cluster status`; `archon cluster down && archon cluster up` restarts it",
    )
