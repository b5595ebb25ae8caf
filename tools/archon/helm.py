"""Run the pinned helm: always an argument list, values always on stdin, never a shell."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence

import yaml

from archon.errors import CommandFailed, ToolchainError
from archon.toolchain import ensure
from archon.toolchain.registry import kubernetes_version

HELM_TIMEOUT_S = 120


def run_helm(
    args: Sequence[str], *, stdin: str | None = None, timeout: float = HELM_TIMEOUT_S
) -> str:
    helm = ensure("helm")
    cmd = [str(helm), *args]
    try:
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            f"helm {args[0] if args else ''} took longer than {timeout:.0f} s",
            fix="retry; check the chart for loops in templates",
        ) from exc
    except OSError as exc:
        raise ToolchainError(
            f"helm at {helm} cannot run: {exc}", fix="run `archon toolchain install`"
        ) from exc
    if proc.returncode != 0:
        raise CommandFailed(helm_error_line(proc.stderr), fix=helm_error_fix(proc.stderr))
    return proc.stdout


def helm_error_line(stderr: str) -> str:
    """Helm's own message, reduced to the line that says what is wrong."""
    lines = [ln.strip() for ln in stderr.strip().splitlines() if ln.strip()]
    if not lines:
        return "helm failed without a message"
    for line in lines:
        # `fail` in a template surfaces as "... execution error at (...): <our message>"
        if "execution error at" in line:
            return line.split("): ", 1)[-1]
    return lines[-1].removeprefix("Error: ")


def helm_error_fix(stderr: str) -> str:
    if "execution error at" in stderr:
        return "change the values named above"
    if "values don't meet the specifications of the schema" in stderr:
        return "run `archon lint` on the values file for each problem with its fix"
    return "see the helm message above"


def values_stdin(overrides: dict[str, object]) -> str:
    return yaml.safe_dump(overrides, sort_keys=False)


def template_args(
    chart: str,
    *,
    release: str,
    namespace: str,
    extra: Sequence[str] = (),
) -> list[str]:
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
