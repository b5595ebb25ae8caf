"""What went wrong when helm ran, as types: helm's stderr is read here and nowhere else.

Callers match on the type (`except ReleaseNotFound`), never on helm's wording; `line()` is helm's
own message reduced to one line (a chart's `fail` message surfaces verbatim).
"""

from __future__ import annotations

import re

from archon.errors import EXIT_UNUSABLE, CommandFailed


class HelmError(CommandFailed):
    """helm ran and failed. `stderr` keeps helm's full text for --debug-style reporting."""

    def __init__(self, message: str, *, verb: str = "", stderr: str = "", fix: str = "") -> None:
        super().__init__(message, fix=fix or "see the helm message above")
        self.verb = verb
        self.stderr = stderr


class ReleaseNotFound(HelmError):
    """The release does not exist in that namespace (status, history, uninstall)."""


class RenderFailed(HelmError):
    """The chart did not render: a template `fail`, the values schema, a template error.
    Nothing reached the cluster."""


class ResourceRejected(HelmError):
    """The API server refused a rendered object (validation or admission)."""


class ClusterUnreachable(HelmError):
    """helm could not talk to the Kubernetes API: the cluster named is unusable (exit 2)."""

    exit_code = EXIT_UNUSABLE


class OperationInProgress(HelmError):
    """Another install, upgrade or rollback of the release holds it (or one was interrupted)."""


class HelmTimeout(HelmError):
    """helm itself did not finish within the bound Archon gives its process."""


class UpgradeFailed(HelmError):
    """`upgrade --install` reached the cluster and failed (its --wait, a hook, a conflict).

    With --rollback-on-failure the release history says what happened next: `rolled_back` (the
    previous revision is deployed again) or `removed` (a first install, uninstalled again).
    """

    rolled_back: bool = False
    removed: bool = False


# Ordered: the first rule that matches wins. A cluster that cannot be reached is reported as
# such even when the verb would otherwise say "not found".
_UNREACHABLE = re.compile(
    r"cluster unreachable|connection refused|no such host|i/o timeout|etcdserver|"
    r"tls: |x509: |unable to connect to the server",
    re.IGNORECASE,
)
_NOT_FOUND = re.compile(r"release: not found|release not loaded", re.IGNORECASE)
_RENDER = re.compile(
    r"execution error at|values don't meet the specifications of the schema|"
    r"parse error at|template: .*: (?:function|executing)|failed to render chart|"
    r"path \".*\" not found|chart not found|Chart\.yaml file is missing",
    re.IGNORECASE,
)
_IN_PROGRESS = re.compile(r"another operation \(install/upgrade/rollback\) is in progress")
_REJECTED = re.compile(r" is invalid: |admission webhook|is forbidden: ", re.IGNORECASE)
_UPGRADE_VERBS = ("upgrade", "install")

_FIXES: dict[type[HelmError], str] = {
    ReleaseNotFound: "check --namespace and --release, or deploy it with `archon deploy -f FILE`",
    RenderFailed: "change the values named above (`archon lint` explains each schema problem)",
    ResourceRejected: "change the values named above; nothing was applied",
    ClusterUnreachable: "check the cluster (`archon cluster status`, --kubeconfig, --kube-context)",
    UpgradeFailed: "run `archon status` to see where the rollout stopped",
    OperationInProgress: "wait for it to finish; if none is running (one was interrupted), "
    "`archon deploy --recover` ends it",
}


def helm_error_line(stderr: str) -> str:
    """helm's own message, reduced to the line that says what is wrong."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "helm failed without a message"
    for line in lines:
        # A template's `fail` surfaces as "... execution error at (<file>:<pos>): <message>".
        if "execution error at" in line:
            return line.split("): ", 1)[-1]
    return lines[-1].removeprefix("Error: ")


def error_type(verb: str, stderr: str) -> type[HelmError]:
    if _UNREACHABLE.search(stderr):
        return ClusterUnreachable
    if _NOT_FOUND.search(stderr) and verb not in _UPGRADE_VERBS:
        return ReleaseNotFound
    if _IN_PROGRESS.search(stderr):
        return OperationInProgress
    if _RENDER.search(stderr):
        return RenderFailed
    if _REJECTED.search(stderr):
        return ResourceRejected
    if verb in _UPGRADE_VERBS:
        return UpgradeFailed
    return HelmError


def classify(verb: str, stderr: str) -> HelmError:
    """The one place helm's stderr becomes an error type."""
    cls = error_type(verb, stderr)
    line = helm_error_line(stderr)
    if cls is ClusterUnreachable:
        line = f"helm {verb}: {line}"
    return cls(line, verb=verb, stderr=stderr, fix=_FIXES.get(cls, ""))
