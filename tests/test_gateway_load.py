"""The real LiteLLM gateway under 200 concurrent streamed completions (the code of `archon bench
gateway`, for a few seconds), and the checks that tell a lost or mixed-up stream from a good one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from archon.bench.gateway import PREFIX_WORDS, Phase, judge, measure, request_body, run_load
from archon.bench.gateway import stream_text as parse
from archon.simulation import SimulationConfig, SimulationServer


def _data(*contents: str, done: bool = True) -> list[str]:
    lines = [
        "data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": c}}]})
        for c in contents
    ]
    return [*lines, "", "data: [DONE]"] if done else lines


def test_each_request_knows_the_exact_text_it_must_get() -> None:
    body, expected = request_body("m", "n1", tokens=10)
    words = expected.split()
    assert len(words) == 10 and words[:PREFIX_WORDS][0] == "[simulated"
    assert words[PREFIX_WORDS:] == ["n1.0", "n1.1", "n1.2"]
    assert body["stream"] is True and body["max_tokens"] == 10
    assert request_body("m", "n2", tokens=10)[1] != expected


def test_a_good_stream_passes_and_a_bad_one_is_named_for_what_went_wrong() -> None:
    _, expected = request_body("m", "ab-1-0", tokens=10)
    head, *rest = expected.split(" ")
    good = _data("", head, *(" " + w for w in rest))
    assert parse(good) == (expected, True)
    phase = Phase("t", streams=1)
    assert judge(phase, "ab-1-0", expected, *parse(good))

    other = expected.replace("ab-1-0.1", "ab-7-3.1")  # a word of another request's stream
    assert not judge(phase, "ab-1-0", expected, other, True)
    cut = " ".join(expected.split()[:-2])
    assert not judge(phase, "ab-1-0", expected, cut, True)  # ended early
    assert not judge(phase, "ab-1-0", expected, expected, False)  # no [DONE]
    assert not judge(phase, "ab-1-0", expected, "something else entirely", True)
    assert (phase.mixed, phase.lost, phase.errors) == (2, 2, 0)
    assert phase.failures == 4 and any("ab-7-3.1" in s for s in phase.samples)


def test_the_load_loop_reads_the_simulation_exactly() -> None:
    # Straight to the simulation: every stream's text is the one its own request asked for.
    sim = SimulationServer(SimulationConfig(model="m", token_latency_s=0.001)).start()
    try:
        phase = asyncio.run(run_load(sim.url + "/v1", ["m"], streams=4, duration_s=0.2, tokens=9))
    finally:
        sim.close()
    assert phase.failures == 0, phase.samples
    assert phase.requests >= 4 and len(phase.total_s) == phase.requests
    assert all(0 < t <= total for t, total in zip(phase.ttft_s, phase.total_s, strict=True))


@pytest.mark.slow
def test_the_real_gateway_holds_200_concurrent_streams(toolchain: dict[str, Path]) -> None:
    # Every one of the 200 clients completes at least one stream through the gateway, and each
    # stream reads exactly the text its own request was answered with.
    load = measure(
        streams=200, duration_s=1.0, baseline_s=0.5, tokens=12, first_token_s=0.05, token_s=0.01
    )
    via = load.gateway
    assert (via.errors, via.lost, via.mixed) == (0, 0, 0), via.samples
    assert via.requests >= 200
    assert (load.direct.lost, load.direct.mixed) == (0, 0), load.direct.samples
    assert len(load.models) >= 2  # the base model and the prompt archetypes (the hook) both
    figures = load.as_dict()
    assert figures["gateway"]["total_p99_ms"] >= figures["gateway"]["total_p50_ms"] > 0
    assert {"added_ttft_p50_ms", "added_total_p99_ms"} <= set(figures)


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        (["--streams", "0"], "not a whole number above 0"),
        (["--streams", "1.5"], "not a whole number above 0"),
        (["--duration", "nan"], "not a finite number above 0"),
        (["--baseline", "-1"], "not a finite number above 0"),
        (["--tokens", "7"], "use at least 8"),
    ],
)
def test_bench_arguments_that_cannot_measure_are_refused(
    argv: list[str], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from archon.bench.gateway import BENCHMARK

    parser = argparse.ArgumentParser(prog="archon bench gateway")
    BENCHMARK.add_arguments(parser)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(argv)
    assert info.value.code == 2 and why in capsys.readouterr().err
    defaults = parser.parse_args([])
    assert (defaults.streams, defaults.duration) == (200, 60.0)
