"""The real LiteLLM proxy on 127.0.0.1, as a child process with a bounded start.

Needs the `gateway` extra (`pip install 'archon-vllm[gateway]'`). Used by the tests, `archon bench
council` and local trials; in a cluster the chart runs the pinned LiteLLM image instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from archon.errors import ToolchainError

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 90.0  # importing the proxy takes 5-30 s on a busy 2-core machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def litellm_command() -> list[str]:
    exe = Path(sys.executable).with_name("litellm")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("litellm")
    if found is None:
        raise ToolchainError(
            "the LiteLLM proxy is not installed",
            fix="pip install 'archon-vllm[gateway]' (the pinned litellm proxy)",
        )
    return [found]


@dataclass
class Proxy:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 20) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(proxy: Proxy, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            raise ToolchainError(
                f"the LiteLLM proxy exited with {proxy.process.returncode}: {proxy.log_tail(5)}",
                fix=f"read {proxy.log}",
            )
        try:
            if httpx.get(f"{proxy.url}/health/liveliness", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise ToolchainError(
        f"the LiteLLM proxy did not answer within {timeout_s:.0f} s", fix=f"read {proxy.log}"
    )


@contextmanager
def run_proxy(
    config: Path,
    *,
    port: int = 0,
    timeout_s: float = START_TIMEOUT_S,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Proxy]:
    """Start `litellm --config` on loopback, wait until it answers, stop it afterwards."""
    port = port or free_port()
    log = config.with_name("litellm.log")
    env = dict(os.environ) | (extra_env or {})
    env.setdefault("ARCHON_ARCHETYPES_FILE", str(config.with_name("archetypes.json")))
    # The council handler calls the archetypes through this same proxy.
    env["ARCHON_COUNCIL_FILE"] = str(config.with_name("council.json"))
    env["ARCHON_COUNCIL_GATEWAY_URL"] = f"http://{LOOPBACK}:{port}"
    # No usage telemetry and no remote model-cost map: the gateway stays on loopback.
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.setdefault("LITELLM_TELEMETRY", "False")
    command = [*litellm_command(), "--config", str(config), "--host", LOOPBACK, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=config.parent
        )
    proxy = Proxy(url=f"http://{LOOPBACK}:{port}", process=process, log=log)
    try:
        _wait_ready(proxy, timeout_s)
        yield proxy
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
