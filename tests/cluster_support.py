"""Helpers for the tests on the real local cluster (its fixtures are in conftest.py)."""

from __future__ import annotations

import time
from typing import Any


def pods(kube: Any, namespace: str, *, terminating: bool = False) -> list[dict[str, Any]]:
    return [
        p
        for p in kube.items(f"/api/v1/namespaces/{namespace}/pods")
        if terminating or not p["metadata"].get("deletionTimestamp")
    ]


def drop_namespace(kube: Any, name: str) -> None:
    """Delete a namespace and wait (bounded) until its pods are gone and their GPU is free."""
    kube.delete(f"/api/v1/namespaces/{name}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and pods(kube, name, terminating=True):
        time.sleep(0.5)
