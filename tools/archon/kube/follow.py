"""Follow a changing Kubernetes status and print each change once, with the time it was seen.

The caller supplies `poll()`, returning a Snapshot: one line per thing followed (keyed, so a
line is printed again only when its text changes) and whether the whole is done or failed. The
follower owns timing: a poll interval, an overall timeout, and an optional `stop()` for when
something else (helm's own --wait) decides the end.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from urllib3.exceptions import HTTPError

from archon.kube.rest import KubeError


@dataclass(frozen=True)
class Snapshot:
    lines: Mapping[str, str] = field(default_factory=dict)  # key -> current text
    done: bool = False
    failed: str = ""  # a reason: following stops and reports it


@dataclass(frozen=True)
class FollowResult:
    ok: bool
    reason: str
    elapsed_s: float
    printed: tuple[str, ...]
    last: Snapshot


def follow(
    poll: Callable[[], Snapshot],
    *,
    timeout_s: float,
    interval_s: float = 0.5,
    stop: Callable[[], bool] | None = None,
    out: TextIO | None = None,
    prefix: str = "  ",
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> FollowResult:
    """Poll until done, failed, stopped or timed out; print every new or changed line."""
    stream = out if out is not None else sys.stdout
    start = clock()
    seen: dict[str, str] = {}
    printed: list[str] = []
    snapshot = Snapshot()

    def emit(snap: Snapshot) -> None:
        for key, text in snap.lines.items():
            if seen.get(key) != text:
                seen[key] = text
                line = f"{prefix}[{clock() - start:5.1f}s] {text}"
                printed.append(text)
                print(line, file=stream, flush=True)

    while True:
        stopping = stop is not None and stop()
        try:
            snapshot = poll()
        except (KubeError, HTTPError, OSError) as exc:  # a transient API error must not end it
            snapshot = Snapshot(lines={"_error": f"(status unavailable: {type(exc).__name__})"})
        emit(snapshot)
        elapsed = clock() - start
        if snapshot.failed:
            return FollowResult(False, snapshot.failed, elapsed, tuple(printed), snapshot)
        if snapshot.done:
            return FollowResult(True, "done", elapsed, tuple(printed), snapshot)
        if stopping:
            return FollowResult(True, "stopped", elapsed, tuple(printed), snapshot)
        if elapsed >= timeout_s:
            reason = f"not done after {timeout_s:.0f} s"
            return FollowResult(False, reason, elapsed, tuple(printed), snapshot)
        sleep(interval_s)
