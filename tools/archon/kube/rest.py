"""A generic Kubernetes REST client over the official client's ApiClient (auth, TLS, kubeconfig).

Generic verbs on API paths, JSON in and out, instead of one typed method per kind: Archon reads a
handful of fields from a few kinds, and plain dicts keep that code short (the lightkube idea).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from kubernetes import client

from archon.errors import ArchonError

Obj = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # server-side apply; JSON is valid YAML
FIELD_MANAGER = "archon"
REQUEST_TIMEOUT_S = 30


class KubeError(ArchonError):
    """The API server answered with an error status; `status` and `reason` say which."""

    def __init__(self, status: int, reason: str, message: str, path: str) -> None:
        super().__init__(
            f"Kubernetes API {status} {reason} on {path}: {message}",
            fix="check the cluster with `archon cluster status`",
        )
        self.status = status
        self.reason = reason


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def request(
        self,
        method: str,
        path: str,
        body: Obj | None = None,
        *,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Obj:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*serialized, _request_timeout=REQUEST_TIMEOUT_S)
        raw: bytes = response.read() or b"{}"  # type: ignore[no-untyped-call]
        data: Obj = json.loads(raw) if raw.strip() else {}
        if not 200 <= response.status < 300:
            message = str(data.get("message") or response.reason or "")
            raise KubeError(response.status, str(data.get("reason") or ""), message, path)
        return data

    def get(self, path: str, **query: str) -> Obj:
        return self.request("GET", path, query=query)

    def items(self, path: str, **query: str) -> list[Obj]:
        items: list[Obj] = self.get(path, **query).get("items") or []
        return items

    def create(self, path: str, body: Obj, *, dry_run: bool = False) -> Obj:
        return self.request("POST", path, body, query={"dryRun": "All"} if dry_run else None)

    def create_or_merge(self, path: str, body: Obj) -> Obj:
        """Create; when it exists already, merge-patch it to `body` (idempotent apply)."""
        try:
            return self.create(path, body)
        except KubeError as exc:
            if exc.status != 409:
                raise
        name = quote(body["metadata"]["name"])
        return self.request("PATCH", f"{path}/{name}", body, content_type=MERGE_PATCH)

    def patch(self, path: str, body: Obj) -> Obj:
        return self.request("PATCH", path, body, content_type=MERGE_PATCH)

    def apply(
        self,
        path: str,
        body: Obj,
        *,
        field_manager: str = FIELD_MANAGER,
        force: bool = True,
        dry_run: bool = False,
    ) -> Obj:
        """Server-side apply of `body` at `path` (the object's own URL, name included).

        Server-side, because some CRDs exceed the 256 KiB last-applied annotation that a
        client-side apply writes; `force` takes over fields another manager set, as
        `kubectl apply --server-side --force-conflicts` does.
        """
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        return self.request("PATCH", path, body, query=query, content_type=APPLY_PATCH)

    def delete(self, path: str, *, missing_ok: bool = True) -> None:
        try:
            self.request("DELETE", path)
        except KubeError as exc:
            if not (missing_ok and exc.status == 404):
                raise
