"""`archon council`: fan-out, failures, veto and the CLI; end to end through the real gateway
over the vLLM simulation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from archon.council import Answer, GatewayClient, run_council
from archon.council.prompts import (
    AGGREGATE_RESERVED_TOKENS,
    CHARS_PER_TOKEN,
    aggregate_messages,
    fit_to_context,
    verdict,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
COUNCIL = REPO_ROOT / "values" / "council.yaml"


def _reply(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def _transport(delays: dict[str, float], replies: dict[str, Any]) -> httpx.MockTransport:
    """A gateway stand-in: per-model delay, reply text, or an HTTP status to fail with."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": m} for m in replies]})
        if request.url.path == "/model/info":
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        model = body["model"]
        await asyncio.sleep(delays.get(model, 0.0))
        reply = replies[model]
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"message": f"{model} broke"}})
        text = reply(body) if callable(reply) else reply
        return httpx.Response(200, json=_reply(text))

    return httpx.MockTransport(handle)


def _council(replies: dict[str, Any], delays: dict[str, float] | None = None, **kw: Any) -> Any:
    async def go() -> Any:
        transport = _transport(delays or {}, replies)
        async with GatewayClient("http://gw", "k", timeout_s=2, transport=transport) as client:
            return await run_council(client, "question?", list(kw.pop("names", replies)), **kw)

    return asyncio.run(go())


def test_fan_out_is_concurrent_and_aggregated() -> None:
    replies = {"a": "A", "b": "B", "c": lambda body: body["messages"][0]["content"]}
    result = _council(replies, {"a": 0.3, "b": 0.3, "c": 0.3}, names=["a", "b"], aggregate="c")
    assert 0.3 <= result.fan_out_s < 0.55, "a and b ran one after the other"
    assert [a.text for a in result.answers] == ["A", "B"]
    assert "answer from a" in result.aggregate.text and "answer from b" in result.aggregate.text
    assert result.final is result.aggregate


def test_one_failing_archetype_does_not_stop_the_others() -> None:
    result = _council({"a": "A", "b": 500, "c": "C"}, names=["a", "b", "c"])
    assert [a.ok for a in result.answers] == [True, False, True]
    assert "HTTP 500" in result.answers[1].error and "b broke" in result.answers[1].error


def test_a_slow_archetype_times_out_alone() -> None:
    result = _council({"a": "A", "slow": "S"}, {"slow": 5.0})
    slow = result.answers[1]
    assert not slow.ok and slow.error == "timed out after 2 s" and slow.latency_s < 3
    assert result.answers[0].ok


def test_the_veto_sends_the_aggregate_back_once() -> None:
    critic = {"n": 0}

    def reject(body: dict[str, Any]) -> str:
        critic["n"] += 1
        return "REJECT\ndivides by zero on an empty list"

    def aggregator(body: dict[str, Any]) -> str:
        text = body["messages"][0]["content"]
        return "revised" if "divides by zero" in text else "merged"

    result = _council(
        {"a": "A", "b": "B", "agg": aggregator, "critic": reject},
        names=["a", "b"],
        aggregate="agg",
        veto="critic",
    )
    assert result.aggregate.text == "merged"
    assert not result.veto.approved and "divides by zero" in result.veto.reasons
    assert result.final.text == "revised" and critic["n"] == 1, "sent back once, not looped"
    approve = _council(
        {"a": "A", "b": "B", "agg": "merged", "critic": "APPROVE"},
        names=["a", "b"],
        aggregate="agg",
        veto="critic",
    )
    assert approve.veto.approved and approve.veto.revised is None
    assert approve.final.text == "merged"


def test_models_leaves_the_base_model_out() -> None:
    """The gateway lists the base model too (model_info.archon_mode: base): it is no archetype,
    so a council's default fan-out skips it."""
    info = {
        "data": [
            {"model_name": "qwen", "model_info": {"archon_mode": "base"}},
            {"model_name": "maat", "model_info": {"archon_mode": "prompt"}},
            {"model_name": "roc", "model_info": {"archon_mode": "instance"}},
        ]
    }

    def gateway(model_info: httpx.Response) -> list[str]:
        async def handle(request: httpx.Request) -> httpx.Response:
            if request.url.path == "/v1/models":
                return httpx.Response(200, json={"data": [{"id": m} for m in info_names]})
            return model_info

        async def go() -> list[str]:
            transport = httpx.MockTransport(handle)
            async with GatewayClient("http://gw", "k", transport=transport) as client:
                return await client.models()

        return asyncio.run(go())

    info_names = ["qwen", "maat", "roc"]
    assert gateway(httpx.Response(200, json=info)) == ["maat", "roc"]
    # A gateway without /model/info: the list as /v1/models gives it.
    assert gateway(httpx.Response(404, json={"detail": "Not Found"})) == info_names
    assert gateway(httpx.Response(200, text="not json")) == info_names


def test_the_aggregator_reads_answers_cut_to_its_context() -> None:
    context = 4096
    room = int((context - AGGREGATE_RESERVED_TOKENS) * CHARS_PER_TOKEN)
    short = Answer("roc", "maat")
    longs = [Answer(name, name[0] * room) for name in ("lilith", "thoth")]
    texts, notes = fit_to_context("q?", [short, *longs], context)
    assert texts[0] == "maat", "a short answer is kept whole"
    assert sum(len(t.split("\n[...")[0]) for t in texts) <= room
    assert all("[... trimmed by archon council" in t for t in texts[1:])
    assert [n.split("'")[0] for n in notes] == ["lilith", "thoth"]
    assert f"{context}-token context" in notes[0]
    message = aggregate_messages("q?", [short, *longs], context)[0]["content"]
    assert len(message) < room + 1000
    whole, none = fit_to_context("q?", [short, Answer("isis", "fine")], context)
    assert whole == ["maat", "fine"] and none == []


def test_a_trimmed_aggregation_says_so_in_the_notes() -> None:
    replies = {"a": "A" * 30000, "b": "B", "agg": lambda body: body["messages"][0]["content"]}
    result = _council(replies, names=["a", "b"], aggregate="agg")
    assert "[... trimmed by archon council" in result.aggregate.text
    assert len(result.aggregate.text) < 20000
    assert result.notes and result.notes[0].startswith("a's answer was trimmed")


def test_verdict_needs_an_explicit_approve() -> None:
    assert verdict("APPROVE") == (True, "")
    assert verdict("REJECT\n1. bug") == (False, "1. bug")
    assert verdict("looks fine to me") == (False, "looks fine to me")


def test_cli_refuses_an_unknown_archetype_and_an_unreachable_gateway(
    run_cli: Callable[..., Any],
) -> None:
    done = run_cli("council", "q", "--gateway", "http://127.0.0.1:9", "--timeout", "2")
    assert done.code == 2 and "cannot reach the gateway" in done.err
    assert len(done.err.strip().splitlines()) == 1 and "Traceback" not in done.err


# --- end to end: simulations -> the real LiteLLM gateway -> archon council ---------------------


@pytest.mark.slow
def test_council_end_to_end_through_the_real_gateway(
    toolchain: dict[str, Path],
    run_cli: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from archon.gateway.local import local_stack
    from archon.simulation import SimulationConfig

    def simulation(model: str) -> SimulationConfig:
        # Roc's own small model fails every call: the council must go on without it.
        failing = 1.0 if model == "qwen2.5-coder-0.5b" else 0.0
        return SimulationConfig(model=model, first_token_latency_s=0.05, failure_rate=failing)

    with local_stack([COUNCIL], tmp_path, simulation=simulation, start_timeout_s=60) as stack:
        monkeypatch.setenv("COUNCIL_KEY", stack.master_key)
        base = ("--gateway", stack.url, "--api-key-env", "COUNCIL_KEY", "--timeout", "20")
        done = run_cli(
            "council", "Is sum(xs)/len(xs) safe?", *base, "--veto", "lilith", "--output", "json"
        )
        assert done.code == 0, done.err
        result = json.loads(done.out)
        names = [a["archetype"] for a in result["answers"]]
        assert names == ["maat", "lilith", "thoth", "isis", "roc", "phoenix"]
        failed = [a for a in result["answers"] if not a["ok"]]
        assert [a["archetype"] for a in failed] == ["roc"] and "500" in failed[0]["error"]
        assert result["aggregate"]["archetype"] == "maat" and result["aggregate"]["ok"]
        # The simulation never says APPROVE: the critic sends the aggregate back once.
        assert result["veto"]["approved"] is False and result["veto"]["revised"]["ok"]
        assert "simulated" in result["final"]

        streamed = run_cli(
            "council", "Explain GIL", *base, "--archetypes", "thoth,isis", "--stream"
        )
        assert streamed.code == 0, streamed.err
        assert "thoth" in streamed.err and "ok" in streamed.err and "first token" in streamed.err
        assert "== aggregating: maat" in streamed.out and "simulated" in streamed.out

        only_roc = run_cli("council", "route me", *base, "--archetypes", "roc")
        assert only_roc.code == 1 and "no archetype answered" in only_roc.err

        monkeypatch.setenv("COUNCIL_KEY", "sk-wrong")
        refused = run_cli("council", "q", *base)
        assert refused.code == 1 and "refused the API key" in refused.err
        assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err
