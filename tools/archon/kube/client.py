"""A kubernetes ApiClient for one kubeconfig file, and waiting for the API to answer.

Which cluster a command acts on is decided in archon.kube.config (kubectl's order)."""

from __future__ import annotations

import time
from pathlib import Path

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from archon.errors import UsageError
from archon.kube.config import ClusterTarget, resolve_target

# One quick look before any wait: a closed port or an unknown host is final, and saying so at
# once beats a retry loop. urllib3 retries a refused connection three times within milliseconds.
PROBE_TIMEOUT_S = (3.0, 5.0)  # (connect, read)


class ApiUnreachable(UsageError):
    """The cluster a command names cannot be reached: nothing was done."""


def api_client(kubeconfig: str | Path, context: str | None = None) -> client.ApiClient:
    """A client for one explicit kubeconfig file (the local cluster's, or --kubeconfig)."""
    return resolve_target(Path(kubeconfig), context).api_client()


def reach_api(target: ClusterTarget, *, timeout_s: float = 15.0) -> client.ApiClient:
    """The API client of `target` once its API answers. A server that refuses the connection or
    whose name does not resolve fails at once, naming the server; anything else (a server still
    starting, a slow network) is waited for up to `timeout_s`."""
    api = target.api_client()
    try:
        client.VersionApi(api).get_code(_request_timeout=PROBE_TIMEOUT_S)
        return api
    except urllib3.exceptions.MaxRetryError as exc:
        if isinstance(exc.reason, urllib3.exceptions.NewConnectionError):
            raise ApiUnreachable(
                f"the Kubernetes API at {target.server} cannot be reached "
                f"({_reason(exc.reason)}; context {target.context or '-'})",
                fix="start the cluster (`archon cluster up` for the local one) or choose another "
                "with --kubeconfig/--kube-context",
            ) from None
    except (ApiException, urllib3.exceptions.HTTPError, OSError):
        pass
    wait_for_api(api, timeout_s=timeout_s, server=target.server)
    return api


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "No route to host"):
        if known.lower() in text.lower():
            return known.lower()
    return type(exc).__name__


def wait_for_api(api: client.ApiClient, *, timeout_s: float = 30.0, server: str = "") -> None:
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
    where = f" at {server}" if server else ""
    raise ApiUnreachable(
        f"the Kubernetes API{where} did not answer within {timeout_s:.0f} s ({last[:200]})",
        fix="run `archon cluster status`; `archon cluster down && archon cluster up` restarts it",
    )
