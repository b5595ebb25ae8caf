"""What the ArgoCD and Tekton controller simulations share: a reconcile loop in a thread.

A simulation is a context: entering prints its banner (so nobody mistakes it for the real
controller) and starts calling `tick()` every `interval_s`; leaving stops the loop.
"""

from __future__ import annotations

import threading
from typing import ClassVar, Self, TextIO


class ControllerLoop:
    banner: ClassVar[str]
    thread_name: ClassVar[str]

    def __init__(self, *, interval_s: float, out: TextIO | None) -> None:
        self.interval_s = interval_s
        self.out = out
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """One reconcile pass over the objects the simulation owns."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        if self.out is not None:
            print(self.banner, file=self.out, flush=True)
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_loop()

    def stop_loop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval_s)
