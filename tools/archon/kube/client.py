"""A kubernetes ApiClient from an explicit kubeconfig (never the user's default one implicitly)."""

from __future__ import annotations

import time
from pathlib import Path

from kubernetes import client, config

from archon.errors import ArchonError, UsageError


def api_client(kubeconfig: str | Path) -> client.ApiClient:
    path = Path(kubeconfig)
    if not path.is_file():
        raise UsageError(
            "kubeconfig not found",
            source=str(path),
            fix="run `archon cluster up` or pass --kubeconfig PATH",
        )
    try:
        api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(path)
        )
    except config.ConfigException as exc:
        raise UsageError(
            f"kubeconfig unusable: {exc}", source=str(path), fix="pass a valid kubeconfig"
        ) from exc
    return api


def wait_for_api(api: client.ApiClient, *, timeout_s: float = 30.0) -> None:
    """Block until the API server answers /readyz-equivalent requests (listing namespaces)."""
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            core.list_namespace(limit=1, _request_timeout=5)
            return
        except Exception as exc:  # any transport error means "not yet"
            last = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        time.sleep(0.5)
    raise ArchonError(
        f"the Kubernetes API did not answer within {timeout_s:.0f} s ({last})",
        fix="run `archon cluster status`; `archon cluster down && archon cluster up` restarts it",
    )
