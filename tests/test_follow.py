"""The follower: prints each change once, stops on done/failed/stop/timeout (fake clock)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from archon.kube.follow import Snapshot, follow


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _polls(*snaps: Snapshot) -> Iterator[Snapshot]:
    yield from snaps
    while True:
        yield snaps[-1]


def test_prints_each_change_once_and_ends_when_done() -> None:
    clock = FakeClock()
    snaps = _polls(
        Snapshot({"p": "pod/a: not scheduled"}),
        Snapshot({"p": "pod/a: not scheduled"}),
        Snapshot({"p": "pod/a: scheduled on n1", "c": "pvc/x: Bound"}),
        Snapshot({"p": "pod/a: ready", "c": "pvc/x: Bound"}, done=True),
    )
    out = io.StringIO()
    result = follow(lambda: next(snaps), timeout_s=60, out=out, clock=clock, sleep=clock.sleep)
    assert result.ok and result.reason == "done"
    assert result.printed == (
        "pod/a: not scheduled",
        "pod/a: scheduled on n1",
        "pvc/x: Bound",
        "pod/a: ready",
    )
    assert out.getvalue().count("pod/a: not scheduled") == 1
    assert "[  1.0s] pod/a: scheduled on n1" in out.getvalue()


def test_failure_stops_with_its_reason() -> None:
    clock = FakeClock()
    result = follow(
        lambda: Snapshot({"a": "x"}, failed="ImagePullBackOff"),
        timeout_s=60,
        out=io.StringIO(),
        clock=clock,
        sleep=clock.sleep,
    )
    assert not result.ok
    assert result.reason == "ImagePullBackOff"


def test_timeout_is_bounded() -> None:
    clock = FakeClock()
    calls = []

    def poll() -> Snapshot:
        calls.append(1)
        return Snapshot({"a": "waiting"})

    result = follow(
        poll, timeout_s=5, interval_s=1, out=io.StringIO(), clock=clock, sleep=clock.sleep
    )
    assert not result.ok
    assert "5 s" in result.reason
    assert len(calls) == 6  # t = 0..5


def test_stop_ends_after_a_final_poll() -> None:
    clock = FakeClock()
    stopped = iter([False, False, True])
    result = follow(
        lambda: Snapshot({"a": f"t={clock.now}"}),
        timeout_s=60,
        stop=lambda: next(stopped),
        out=io.StringIO(),
        clock=clock,
        sleep=clock.sleep,
    )
    assert result.ok and result.reason == "stopped"
    assert result.printed[-1] == "t=1.0"  # the poll after stop() is still shown


def test_api_errors_do_not_end_the_follow_but_bugs_do() -> None:
    from archon.kube.rest import KubeError

    clock = FakeClock()
    answers = iter(
        [
            KubeError(503, "ServiceUnavailable", "etcd leader changed", "/api/v1/pods"),
            ConnectionResetError("reset by peer"),
            Snapshot({"a": "ok"}, done=True),
        ]
    )

    def poll() -> Snapshot:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = follow(poll, timeout_s=60, out=io.StringIO(), clock=clock, sleep=clock.sleep)
    assert result.ok
    assert "(status unavailable: KubeError)" in result.printed
    assert "(status unavailable: ConnectionResetError)" in result.printed

    def buggy() -> Snapshot:
        raise KeyError("metadata")  # Archon's own bug: it reaches the CLI (exit 70)

    with pytest.raises(KeyError):
        follow(buggy, timeout_s=60, out=io.StringIO(), clock=clock, sleep=clock.sleep)
