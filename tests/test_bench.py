"""`archon bench`: one registry found by discovery, one result shape, one way to print it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import archon.bench
from archon.bench import BenchResult, registry

FAKE = textwrap.dedent(
    """\
    import argparse

    from archon.bench.base import BenchResult


    class Fake:
        name = "fake"
        help = "a benchmark added as one file"

        def add_arguments(self, parser: argparse.ArgumentParser) -> None:
            parser.add_argument("--seconds", type=float, default=1.0)

        def run(self, args: argparse.Namespace) -> BenchResult:
            return BenchResult(
                name=self.name,
                target="<= 2 s",
                met=args.seconds <= 2,
                figures={"seconds": args.seconds},
                lines=[f"took {args.seconds} s"],
            )


    BENCHMARK = Fake()
    """
)


def test_the_shipped_benchmarks_are_registered() -> None:
    names = [b.name for b in registry()]
    assert {"cluster", "council", "gateway", "hub", "preflight", "render"} <= set(names)
    assert names == sorted(names)


def test_a_result_renders_the_same_way_as_text_and_json() -> None:
    result = BenchResult("x", target="< 5 s", met=False, figures={"s": 7.0}, lines=["took 7 s"])
    assert result.text() == "took 7 s\ntarget: < 5 s: NOT met"
    assert result.as_dict() == {"benchmark": "x", "s": 7.0, "target": "< 5 s", "met": False}


@pytest.fixture
def fake_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark module dropped into the package's search path: nothing else is edited."""
    (tmp_path / "fake.py").write_text(FAKE)
    monkeypatch.setattr(archon.bench, "__path__", [*archon.bench.__path__, str(tmp_path)])


def test_one_module_adds_a_benchmark(fake_bench: None, run_cli) -> None:  # type: ignore[no-untyped-def]
    assert "fake" in [b.name for b in registry()]
    met = run_cli("bench", "fake", "--seconds", "1.5")
    assert (met.code, met.out) == (0, "took 1.5 s\ntarget: <= 2 s: met\n")
    missed = run_cli("bench", "fake", "--seconds", "3", "--output", "json")
    assert missed.code == 1
    assert json.loads(missed.out) == {
        "benchmark": "fake",
        "seconds": 3.0,
        "target": "<= 2 s",
        "met": False,
    }


def test_unknown_benchmark_is_unusable_input(run_cli) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        run_cli("bench", "nope")
    assert info.value.code == 2


def test_every_benchmarks_help_renders() -> None:
    """argparse formats help with %: a literal percent sign in a benchmark's help crashes
    `archon bench --help`."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "archon", "bench", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "council" in done.stdout and "gateway" in done.stdout
