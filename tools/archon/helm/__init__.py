"""The pinned helm, for every verb Archon uses (template, upgrade --install, status, history,
list, uninstall, package, lint): argument lists only, values on stdin, typed errors.

The release defaults live here, so the CLI, render and deploy name the same release.
"""

from archon.helm.command import (
    HELM_TIMEOUT_S,
    Helm,
    Pending,
    Release,
    Revision,
    interrupt_running,
    template_args,
    values_stdin,
)
from archon.helm.errors import (
    ClusterUnreachable,
    HelmError,
    HelmTimeout,
    OperationInProgress,
    ReleaseNotFound,
    RenderFailed,
    ResourceRejected,
    UpgradeFailed,
    classify,
    helm_error_line,
)

DEFAULT_RELEASE = "archon"
DEFAULT_NAMESPACE = "archon-system"

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_RELEASE",
    "HELM_TIMEOUT_S",
    "ClusterUnreachable",
    "Helm",
    "HelmError",
    "HelmTimeout",
    "OperationInProgress",
    "Pending",
    "Release",
    "ReleaseNotFound",
    "RenderFailed",
    "ResourceRejected",
    "Revision",
    "UpgradeFailed",
    "classify",
    "helm_error_line",
    "interrupt_running",
    "template_args",
    "values_stdin",
]
