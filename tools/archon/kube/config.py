"""Which cluster a command acts on, chosen the way kubectl and helm choose it.

Order: `--kubeconfig FILE`, then `$KUBECONFIG` (a list of files joined with the path separator,
merged as kubectl merges them), then `~/.kube/config`, then the in-cluster service account (a
pod, such as a Tekton step). `--kube-context` picks a context; without it the file's
`current-context` is used. Every command that changes a cluster prints `describe()` first, so
nobody acts on a cluster they did not expect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from archon.errors import UsageError

IN_CLUSTER = "in-cluster service account"
_TOKEN_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


@dataclass(frozen=True)
class ClusterTarget:
    """A resolved cluster: the kubeconfig files read, the context in use and its API server."""

    files: tuple[Path, ...]  # empty for the in-cluster service account
    context: str
    server: str
    source: str  # "--kubeconfig", "$KUBECONFIG", "~/.kube/config" or IN_CLUSTER

    @property
    def in_cluster(self) -> bool:
        return not self.files

    def describe(self) -> str:
        if self.in_cluster:
            return f"cluster: {self.server} ({IN_CLUSTER})"
        files = os.pathsep.join(str(f) for f in self.files)
        where = f"kubeconfig {files}, {self.source}"
        return f"cluster: context {self.context!r} at {self.server} ({where})"

    def api_client(self) -> client.ApiClient:
        if self.in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration)
        try:
            api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=os.pathsep.join(str(f) for f in self.files), context=self.context
            )
        except (config.ConfigException, OSError, ValueError, TypeError) as exc:
            raise UsageError(
                f"kubeconfig unusable: {exc}",
                source=str(self.files[0]),
                key="--kubeconfig",
                fix="pass a valid kubeconfig, or check `kubectl config view`",
            ) from exc
        return api

    def helm_flags(self) -> list[str]:
        """The same cluster for helm. helm reads $KUBECONFIG and ~/.kube/config itself, in
        kubectl's order; the context is pinned so helm cannot drift to another current-context."""
        if self.in_cluster:
            return []
        flags = ["--kubeconfig", str(self.files[0])] if self.source == "--kubeconfig" else []
        return [*flags, "--kube-context", self.context]

    def as_dict(self) -> dict[str, Any]:
        return {
            "context": self.context,
            "server": self.server,
            "kubeconfig": [str(f) for f in self.files],
            "source": self.source,
        }


def _candidate_files(kubeconfig: Path | None) -> tuple[tuple[Path, ...], str]:
    if kubeconfig is not None:
        return (kubeconfig.expanduser(),), "--kubeconfig"
    env = os.environ.get("KUBECONFIG", "")
    listed = tuple(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    if listed:
        return listed, "$KUBECONFIG"
    return (Path("~/.kube/config").expanduser(),), "~/.kube/config"


def _read(file: Path, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"kubeconfig cannot be read: {exc.__class__.__name__}",
            source=str(file),
            key=source,
            fix="pass a readable kubeconfig with --kubeconfig",
        ) from exc
    except yaml.YAMLError as exc:
        raise UsageError(
            "kubeconfig is not valid YAML",
            source=str(file),
            key=source,
            fix="repair it, or pass another with --kubeconfig",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(
            "kubeconfig is not a mapping",
            source=str(file),
            key=source,
            fix="pass a kubeconfig written by kubectl or `archon cluster up`",
        )
    return data


def _named(section: Any, name: str) -> dict[str, Any] | None:
    for entry in section if isinstance(section, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return entry
    return None


def resolve_target(kubeconfig: Path | None = None, context: str | None = None) -> ClusterTarget:
    """The cluster kubectl would use with the same flags and environment; UsageError if none."""
    files, source = _candidate_files(kubeconfig)
    present = tuple(f for f in files if f.is_file())
    if source == "--kubeconfig" and not present:
        raise UsageError(
            "kubeconfig not found",
            key="--kubeconfig",
            source=str(files[0]),
            fix="pass an existing file, or run `archon cluster up` for a local cluster",
        )
    if not present:
        if _TOKEN_FILE.is_file() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            host = os.environ["KUBERNETES_SERVICE_HOST"]
            port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
            return ClusterTarget((), "", f"https://{host}:{port}", IN_CLUSTER)
        where = os.pathsep.join(str(f) for f in files)
        raise UsageError(
            f"no kubeconfig found ({source}: {where})",
            key="--kubeconfig",
            fix="pass --kubeconfig FILE, set KUBECONFIG, or run `archon cluster up` and "
            "use the `export KUBECONFIG=...` line it prints",
        )
    # kubectl's merge: for every name the first file that defines it wins, and so does the
    # first current-context.
    merged: dict[str, list[Any]] = {"contexts": [], "clusters": []}
    current = ""
    for file in present:
        data = _read(file, source)
        current = current or str(data.get("current-context") or "")
        for section in merged:
            entries = data.get(section) or []
            if not isinstance(entries, list):
                raise UsageError(
                    f"{section} is a {type(entries).__name__}, not a list",
                    source=str(file),
                    key=source,
                    fix="pass a kubeconfig written by kubectl or `archon cluster up`",
                )
            merged[section] += [e for e in entries if isinstance(e, dict)]
    chosen = context or current
    if not chosen:
        raise UsageError(
            "the kubeconfig has no current-context",
            key="--kube-context",
            source=str(present[0]),
            fix="pass --kube-context NAME (see `kubectl config get-contexts`)",
        )
    entry = _named(merged["contexts"], chosen)
    if entry is None:
        names = [str(e.get("name")) for e in merged["contexts"]]
        raise UsageError(
            f"context {chosen!r} not found",
            key="--kube-context",
            source=os.pathsep.join(str(f) for f in present),
            fix=f"use one of: {', '.join(names) or '(none defined)'}",
        )
    cluster_name = str((entry.get("context") or {}).get("cluster") or "")
    cluster = _named(merged["clusters"], cluster_name) or {}
    server = str((cluster.get("cluster") or {}).get("server") or "")
    if not server:
        raise UsageError(
            f"context {chosen!r} names cluster {cluster_name!r}, which has no server",
            key="--kube-context",
            source=os.pathsep.join(str(f) for f in present),
            fix="repair the kubeconfig (`kubectl config view`)",
        )
    return ClusterTarget(present, chosen, server, source)
