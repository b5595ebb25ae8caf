"""`archon bench hub`: whole `archon preflight` processes against the loopback Hub simulation.

Only the result's shape and the request counts are asserted here; the wall-time targets are the
benchmark's own verdict (`met`), which depends on the machine."""

from __future__ import annotations

import json

import pytest

from archon.simulation.hub import load_repos


def test_one_round_reports_each_kind_and_no_request_when_cached(run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # an offline switch in the caller's environment must not stop the runs
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = run_cli("bench", "hub", "--runs", "1", "--output", "json")
    data = json.loads(result.out)
    assert result.code == (0 if data["met"] else 1), result.err
    assert data["benchmark"] == "hub" and data["runs"] == 1
    assert data["model"] in load_repos()
    for kind, source in (("uncached", "hub"), ("cached", "cache"), ("catalog", "catalog")):
        figures = data[kind]
        assert figures["errors"] == [], (kind, figures["errors"])
        assert figures["source"] == source and figures["runs"] == len(figures["wall_s"]) == 1
        assert 0 < figures["min_s"] <= figures["median_s"] <= figures["max_s"]
    # the uncached run read config.json and the safetensors headers; the cached one asked nothing
    assert data["uncached"]["requests"] >= 3
    assert data["cached"]["requests"] == data["cached_requests"] == 0
    assert data["catalog"]["requests"] == 0
    assert data["targets"] == {
        "uncached_median_s": 2.0,
        "cached_median_s": 0.3,
        "cached_requests": 0,
    }
    assert data["targets_met"]["cached_requests"] is True
    assert data["met"] == all(data["targets_met"].values())
    assert "round 1/1" in result.err  # progress on stderr


def test_a_gated_model_opens_with_the_simulations_token(run_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # the user's own token is never sent to the simulation (which would refuse it)
    monkeypatch.setenv("HF_TOKEN", "hf_of_the_user")
    result = run_cli(
        "bench", "hub", "--runs", "1", "--model", "google/gemma-3-12b-it", "--output", "json"
    )
    data = json.loads(result.out)
    assert data["uncached"]["errors"] == [] and data["cached_requests"] == 0


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--model", "example/not-served"], "--model"),
        (["--gpu", "RTX 9999"], "RTX 9999"),
    ],
)
def test_unusable_input_is_one_line(run_cli, argv: list[str], named: str) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("bench", "hub", "--runs", "1", *argv)
    assert result.code == 2
    line = result.err.strip().splitlines()[-1]
    assert named in line and "fix:" in line


def test_runs_must_be_a_count(run_cli) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        run_cli("bench", "hub", "--runs", "0")
    assert info.value.code == 2
