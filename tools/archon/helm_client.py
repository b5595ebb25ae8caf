"""pyhelm3 with an argument list instead of a shell, pointed at the pinned helm.

pyhelm3 0.5.8's `Command.run` joins the command with shlex and runs it through
`asyncio.create_subprocess_shell`; Archon never starts a shell, so `ExecCommand.run` starts helm
with `create_subprocess_exec` and the argument list itself, values on stdin, and keeps pyhelm3's
classification of helm's stderr into its error types.

Helm v4 flag names (checked with `helm upgrade --help` of the pinned v4.3.1): pyhelm3 already
sends `--rollback-on-failure` for `atomic=True` and `--wait` (alone it means the `watcher`
strategy); its bare `--dry-run` would be a client-side dry-run, so it becomes `--dry-run=server`:
Archon's dry-run is the one with real admission (a client-side one is `archon render`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyhelm3 import Command, errors
from pyhelm3.command import CHART_NOT_FOUND, CONNECTION_ERROR

from archon.errors import CommandFailed
from archon.toolchain import ensure

log = logging.getLogger(__name__)

# v3-era flags pyhelm3 emits, and what helm v4 needs instead.
V4_FLAGS = {"--dry-run": "--dry-run=server"}


def classify(stderr: bytes) -> type[Exception]:
    """pyhelm3 0.5.8 Command.run's rules, in its order (first match wins)."""
    text = stderr.decode(errors="replace").lower()
    cls: type[Exception] = errors.Error
    if "context canceled" in text:
        cls = errors.CommandCancelledError
    elif "etcdserver" in text:  # pyhelm3: "must be before other rules"
        cls = errors.ConnectionError
    elif "release: not found" in text:
        cls = errors.ReleaseNotFoundError
    elif "failed to render chart" in text or "execution error" in text:
        cls = errors.FailedToRenderChartError
    elif "rendered manifests contain a resource that already exists" in text:
        cls = errors.ResourceAlreadyExistsError
    elif "is invalid" in text:
        cls = errors.InvalidResourceError
    elif CHART_NOT_FOUND.search(text) is not None:
        cls = errors.ChartNotFoundError
    elif CONNECTION_ERROR.search(text) is not None:
        cls = errors.ConnectionError
    return cls


class ExecCommand(Command):  # type: ignore[misc]  # pyhelm3 ships no type information
    """pyhelm3's Command, running helm without a shell."""

    def argv(self, command: Sequence[Any]) -> list[str]:
        """The exact argument list helm receives (public so tests can check it)."""
        args = [str(self._executable)]
        args += [V4_FLAGS.get(str(part), str(part)) for part in command]
        if self._kubeconfig:
            args += ["--kubeconfig", str(self._kubeconfig)]
        if self._kubecontext:
            args += ["--kube-context", str(self._kubecontext)]
        if self._kubeapiserver:
            args += ["--kube-apiserver", str(self._kubeapiserver)]
        if self._kubetoken:
            args += ["--kube-token", str(self._kubetoken)]
        if self._insecure_skip_tls_verify:
            args.append("--kube-insecure-skip-tls-verify")
        return args

    async def run(self, command: list[Any], input: bytes | None = None) -> bytes:
        args = self.argv(command)
        log.info("running helm: %s", " ".join(self._log_format(a) for a in args))
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, stderr = await proc.communicate(input)
        except asyncio.CancelledError:
            # Let helm finish its own cleanup (as pyhelm3 does), then re-raise.
            try:
                proc.terminate()
                await proc.communicate()
            except ProcessLookupError:
                pass
            raise
        if proc.returncode == 0:
            return stdout
        code = proc.returncode if proc.returncode is not None else -1
        raise classify(stderr)(code, stdout, stderr)


def helm_command(
    kubeconfig: str | Path | None = None,
    *,
    timeout: str = "5m",
    executable: str | Path | None = None,
) -> ExecCommand:
    """An ExecCommand for the pinned helm (built on first use) and the given kubeconfig."""
    return ExecCommand(
        executable=str(executable or ensure("helm")),
        kubeconfig=Path(kubeconfig) if kubeconfig else None,
        default_timeout=timeout,
    )


def error_text(exc: BaseException) -> str:
    """Helm's stderr as text (pyhelm3's errors keep bytes)."""
    raw = getattr(exc, "stderr", b"") or b""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def release_error(
    exc: BaseException, *, action: str, release: str, namespace: str, not_found_fix: str
) -> CommandFailed:
    """One line for a failed helm call on a release: a missing release is said plainly."""
    text = error_text(exc)
    if "not found" in text:
        return CommandFailed(
            f"release {release!r} not found in namespace {namespace!r}", fix=not_found_fix
        )
    return CommandFailed(f"helm {action} failed: {text.strip()[:200]}")
