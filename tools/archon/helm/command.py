"""Every helm verb Archon uses, run the same way: an argument list (no shell), values as YAML
on stdin (`--values -`), the cluster through `ClusterTarget.helm_flags()`, errors classified
once (archon.helm.errors).

Helm v4 flags (checked with `helm <verb> --help` of the pinned v4.3.1): `--rollback-on-failure`
(v3's --atomic), `--wait=watcher` (what a bare --wait means), `--dry-run=server` (a bare
--dry-run is client-side; Archon's client-side check is `archon render`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from archon.errors import ToolchainError
from archon.helm.errors import (
    ClusterUnreachable,
    HelmTimeout,
    ReleaseNotFound,
    UpgradeFailed,
    classify,
)
from archon.toolchain import ensure
from archon.toolchain.registry import kubernetes_version

if TYPE_CHECKING:
    from archon.kube.config import ClusterTarget

HELM_TIMEOUT_S = 120.0  # bound on helm verbs that do not wait for a rollout


@dataclass(frozen=True)
class Release:
    """The fields of helm's release JSON (`status`/`upgrade -o json`) Archon reads."""

    name: str
    namespace: str
    revision: int
    status: str
    notes: str = ""
    manifest: str = ""
    description: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Release:
        info = data.get("info") or {}
        return cls(
            name=str(data.get("name", "")),
            namespace=str(data.get("namespace", "")),
            revision=int(data.get("version", 0)),
            status=str(info.get("status", "")),
            notes=str(info.get("notes", "")).strip(),
            manifest=str(data.get("manifest", "")),
            description=str(info.get("description", "")),
        )


@dataclass(frozen=True)
class Revision:
    """One entry of `helm history -o json`."""

    revision: int
    status: str
    description: str
    chart: str = ""


@dataclass(frozen=True)
class Pending:
    """A release locked by an operation: the pending revision and the one to roll back to
    (None: never deployed, so the way out is an uninstall)."""

    revision: Revision
    rollback_to: int | None

    def recovery(self) -> str:
        if self.rollback_to is None:
            return "uninstall the never-deployed release (the model-cache claim is kept)"
        return f"roll back to revision {self.rollback_to}, the last one deployed"


# helm processes of this Archon process, so that an interrupt can be passed on to them.
_LIVE: set[subprocess.Popen[str]] = set()
_LIVE_LOCK = threading.Lock()


def interrupt_running() -> int:
    """Send SIGINT to every helm this process runs, as a terminal's Ctrl-C would to the whole
    group: helm's upgrade then cancels and, with --rollback-on-failure, rolls back. Returns how
    many were signalled."""
    with _LIVE_LOCK:
        live = [p for p in _LIVE if p.poll() is None]
    for proc in live:
        proc.send_signal(signal.SIGINT)
    return len(live)


@dataclass(frozen=True)
class Helm:
    """The pinned helm acting on `target` (None: offline verbs only, or helm's own default)."""

    target: ClusterTarget | None = None
    executable: Path | None = None  # default: the pinned helm, built on first use
    history_max: int = 10

    def argv(self, args: Sequence[str], *, cluster: bool) -> list[str]:
        helm = self.executable or ensure("helm")
        flags = self.target.helm_flags() if cluster and self.target is not None else []
        return [str(helm), *args, *flags]

    def run(
        self,
        args: Sequence[str],
        *,
        stdin: str | None = None,
        timeout_s: float = HELM_TIMEOUT_S,
        cluster: bool = True,
    ) -> str:
        """helm's stdout; a failure raises the HelmError subclass that says what went wrong."""
        proc = self._exec(self.argv(args, cluster=cluster), stdin=stdin, timeout_s=timeout_s)
        if proc.returncode != 0:
            error = classify(args[0] if args else "", proc.stderr)
            if isinstance(error, ClusterUnreachable) and cluster and self.target is not None:
                error.message = f"helm cannot reach the Kubernetes API at {self.target.server}"
                error.fix = (
                    "start the cluster (`archon cluster up` for the local one) or choose another "
                    "with --kubeconfig/--kube-context"
                )
            raise error
        return proc.stdout

    def _exec(
        self, argv: list[str], *, stdin: str | None, timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        verb = argv[1] if len(argv) > 1 else ""
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise ToolchainError(
                f"helm at {argv[0]} cannot run: {exc.strerror or exc}",
                fix="run `archon toolchain install`",
            ) from exc
        with _LIVE_LOCK:
            _LIVE.add(proc)
        try:
            stdout, stderr = proc.communicate(input=stdin, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            proc.kill()
            proc.communicate()
            raise HelmTimeout(
                f"helm {verb} took longer than {timeout_s:.0f} s",
                verb=verb,
                fix="run `archon status` to see the release; check the chart for slow hooks",
            ) from exc
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)

    # --- offline verbs ---------------------------------------------------------------------

    def template(
        self,
        chart: str | Path,
        values: Mapping[str, Any],
        *,
        release: str,
        namespace: str,
        extra: Sequence[str] = (),
    ) -> str:
        args = template_args(str(chart), release=release, namespace=namespace, extra=extra)
        return self.run(args, stdin=values_stdin(values), cluster=False)

    def lint(self, chart: str | Path, *, strict: bool = True) -> subprocess.CompletedProcess[str]:
        """helm lint; the findings are on stdout (one `[LEVEL] path: message` a line), so the
        completed process is returned for the caller to read, whatever the exit code."""
        argv = self.argv(["lint", *(["--strict"] if strict else []), str(chart)], cluster=False)
        return self._exec(argv, stdin=None, timeout_s=HELM_TIMEOUT_S)

    def package(self, chart: str | Path, destination: str | Path) -> str:
        return self.run(["package", str(chart), "--destination", str(destination)], cluster=False)

    # --- release verbs ---------------------------------------------------------------------

    def upgrade_install(
        self,
        release: str,
        chart: str | Path,
        values: Mapping[str, Any],
        *,
        namespace: str,
        timeout_s: int,
        wait: bool = True,
        rollback_on_failure: bool = True,
        create_namespace: bool = True,
        dry_run: bool = False,
    ) -> Release:
        args = [
            "upgrade",
            release,
            str(chart),
            "--install",
            "--namespace",
            namespace,
            "--history-max",
            str(self.history_max),
            "--timeout",
            f"{timeout_s}s",
            "--output",
            "json",
            "--values",
            "-",
        ]
        if wait:
            args.append("--wait=watcher")
        if rollback_on_failure:
            args.append("--rollback-on-failure")
        if create_namespace:
            args.append("--create-namespace")
        if dry_run:
            args.append("--dry-run=server")
        # A failed --wait is followed by the rollback, which waits again with the same timeout.
        bound = (2 * timeout_s + 60) if wait else max(HELM_TIMEOUT_S, timeout_s + 60)
        try:
            stdout = self.run(args, stdin=values_stdin(values), timeout_s=bound)
        except UpgradeFailed as exc:
            if rollback_on_failure and not dry_run:
                self._read_outcome(exc, release, namespace)
            raise
        return Release.from_json(_json_object(stdout))

    def _read_outcome(self, exc: UpgradeFailed, release: str, namespace: str) -> None:
        """What --rollback-on-failure did, from the release history (not from helm's words)."""
        try:
            revisions = self.history(release, namespace)
        except ReleaseNotFound:
            exc.removed = True  # a failed first install is uninstalled again
            return
        if len(revisions) >= 2:
            last, failed = revisions[-1], revisions[-2]
            exc.rolled_back = last.status == "deployed" and failed.status == "failed"

    def rollback(self, release: str, namespace: str, revision: int, *, timeout_s: int) -> None:
        args = [
            "rollback",
            release,
            str(revision),
            "--namespace",
            namespace,
            "--wait=watcher",
            "--timeout",
            f"{timeout_s}s",
            "--history-max",
            str(self.history_max),
        ]
        self.run(args, timeout_s=timeout_s + 60)

    def pending(self, release: str, namespace: str) -> Pending | None:
        """The release's operation still pending (`pending-install`, `-upgrade`, `-rollback`), if
        any: one is running, or one was interrupted and left the release locked."""
        try:
            revisions = self.history(release, namespace)
        except ReleaseNotFound:
            return None
        if not revisions or not revisions[-1].status.startswith("pending-"):
            return None
        served = [r for r in revisions[:-1] if r.status in ("deployed", "superseded")]
        return Pending(revisions[-1], served[-1].revision if served else None)

    def status(self, release: str, namespace: str) -> Release:
        stdout = self.run(["status", release, "--namespace", namespace, "--output", "json"])
        return Release.from_json(_json_object(stdout))

    def history(self, release: str, namespace: str) -> list[Revision]:
        stdout = self.run(["history", release, "--namespace", namespace, "--output", "json"])
        entries = json.loads(stdout or "[]")
        revisions = [
            Revision(
                revision=int(e.get("revision", 0)),
                status=str(e.get("status", "")),
                description=str(e.get("description", "")),
                chart=str(e.get("chart", "")),
            )
            for e in entries
            if isinstance(e, dict)
        ]
        return sorted(revisions, key=lambda r: r.revision)

    def releases(self, namespace: str, *, name: str | None = None) -> list[dict[str, Any]]:
        """`helm list` in one namespace, optionally only the release called `name`."""
        args = ["list", "--namespace", namespace, "--output", "json"]
        if name is not None:
            args += ["--filter", f"^{name}$"]
        listed = json.loads(self.run(args) or "[]")
        return [e for e in listed if isinstance(e, dict)]

    def uninstall(self, release: str, namespace: str, *, timeout_s: int, wait: bool = True) -> None:
        args = ["uninstall", release, "--namespace", namespace, "--timeout", f"{timeout_s}s"]
        if wait:
            args.append("--wait=watcher")
        self.run(args, timeout_s=timeout_s + 60)


def values_stdin(values: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(values), sort_keys=False)


def template_args(
    chart: str, *, release: str, namespace: str, extra: Sequence[str] = ()
) -> list[str]:
    """`helm template` for the pinned Kubernetes version, values read from stdin."""
    return [
        "template",
        release,
        chart,
        "--namespace",
        namespace,
        "--kube-version",
        kubernetes_version(),
        "--values",
        "-",
        *extra,
    ]


def _json_object(stdout: str) -> dict[str, Any]:
    # helm may print registry lines ("Pulled: ...") before the JSON of an OCI chart.
    start = stdout.find("{")
    data = json.loads(stdout[start:]) if start >= 0 else {}
    return data if isinstance(data, dict) else {}
