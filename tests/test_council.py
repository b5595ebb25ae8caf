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

from archon.council import (
    Answer,
    Council,
    CouncilResult,
    GatewayClient,
    Settings,
    SettingsError,
    engine,
    prompts,
)

AGGREGATE_RESERVED_TOKENS = prompts.AGGREGATE_RESERVED_TOKENS
CHARS_PER_TOKEN = prompts.CHARS_PER_TOKEN
GATE_SCHEMA_NAME = prompts.GATE_SCHEMA_NAME
REVIEW_SCHEMA_NAME = prompts.REVIEW_SCHEMA_NAME
aggregate_messages = prompts.aggregate_messages
fit_to_context = prompts.fit_to_context
parse_route = prompts.parse_route
parse_verdict = prompts.parse_verdict
pieces = engine.pieces
session_of = engine.session_of

REPO_ROOT = Path(__file__).resolve().parent.parent
COUNCIL = REPO_ROOT / "values" / "council.yaml"


def _reply(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}


def _transport(
    delays: dict[str, float], replies: dict[str, Any], seen: list[dict[str, Any]] | None = None
) -> httpx.MockTransport:
    """A gateway stand-in: per-model delay, reply text (or a function of the request body), or
    an HTTP status to fail with. `seen` collects every chat request body."""

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": m} for m in replies]})
        if request.url.path == "/model/info":
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        if seen is not None:
            seen.append(body)
        model = body["model"]
        await asyncio.sleep(delays.get(model, 0.0))
        reply = replies[model]
        if isinstance(reply, int):
            return httpx.Response(reply, json={"error": {"message": f"{model} broke"}})
        text = reply(body) if callable(reply) else reply
        return httpx.Response(200, json=_reply(text))

    return httpx.MockTransport(handle)


def _council(
    replies: dict[str, Any],
    delays: dict[str, float] | None = None,
    *,
    names: list[str] | None = None,
    seen: list[dict[str, Any]] | None = None,
    memory: Any = None,
    session: str = "default",
    question: str = "question?",
    **settings: Any,
) -> CouncilResult:
    async def go() -> CouncilResult:
        transport = _transport(delays or {}, replies, seen)
        async with GatewayClient("http://gw", "k", timeout_s=2, transport=transport) as client:
            members = tuple(names or replies)
            council = Council(client, Settings(members=members, **settings), memory=memory)
            return await council.deliberate(question, session=session)

    return asyncio.run(go())


def _verdict(name: str, **fields: Any) -> str:
    return json.dumps(fields)


def _schema_name(body: dict[str, Any]) -> str:
    return str((body.get("response_format") or {}).get("json_schema", {}).get("name", ""))


def test_fan_out_is_concurrent_and_aggregated() -> None:
    replies = {"a": "A", "b": "B", "c": lambda body: body["messages"][0]["content"]}
    result = _council(replies, {"a": 0.3, "b": 0.3, "c": 0.3}, names=["a", "b"], aggregator="c")
    assert 0.3 <= result.fan_out_s < 0.55, "a and b ran one after the other"
    assert [a.text for a in result.answers] == ["A", "B"]
    assert "answer from a" in result.aggregate.text and "answer from b" in result.aggregate.text
    assert result.final is result.aggregate
    assert result.path == ["route: a, b", "fan-out: 2/2 answered", "aggregate: c"]


def test_one_failing_archetype_does_not_stop_the_others() -> None:
    result = _council({"a": "A", "b": 500, "c": "C"}, names=["a", "b", "c"])
    assert [a.ok for a in result.answers] == [True, False, True]
    assert "HTTP 500" in result.answers[1].error and "b broke" in result.answers[1].error


def test_a_slow_archetype_times_out_alone() -> None:
    result = _council({"a": "A", "slow": "S"}, {"slow": 5.0})
    slow = result.answers[1]
    assert not slow.ok and slow.error == "timed out after 2 s" and slow.latency_s < 3
    assert result.answers[0].ok


def test_the_critic_sends_it_back_then_phoenix_rewrites_then_it_stops() -> None:
    """First rejection: the author revises. Second: Phoenix rewrites from every critique.
    Approval stops the cascade; the path names each step."""
    verdicts = iter(["reject", "reject", "approve"])
    reviews: list[dict[str, Any]] = []

    def critic(body: dict[str, Any]) -> str:
        reviews.append(body)
        verdict = next(verdicts)
        reasons = [] if verdict == "approve" else [f"flaw {len(reviews)}"]
        return json.dumps({"verdict": verdict, "reasons": reasons})

    def agg(body: dict[str, Any]) -> str:
        text = body["messages"][0]["content"]
        return "revised" if "flaw 1" in text else "merged"

    def phoenix(body: dict[str, Any]) -> str:
        text = body["messages"][0]["content"]
        assert "flaw 1" in text and "flaw 2" in text, "Phoenix reads every critique"
        return "reborn"

    result = _council(
        {"a": "A", "b": "B", "agg": agg, "critic": critic, "phoenix": phoenix},
        names=["a", "b"],
        aggregator="agg",
        critic="critic",
        escalate_to="phoenix",
    )
    assert [r.approved for r in result.reviews] == [False, False, True]
    assert [a.text for a in result.rewrites] == ["revised", "reborn"]
    assert result.final is not None and result.final.text == "reborn"
    assert result.path[-5:] == [
        "review 1: rejected by critic",
        "revise: agg",
        "review 2: rejected by critic",
        "rebirth: phoenix",
        "review 3: approved by critic",
    ]
    assert all(_schema_name(body) == REVIEW_SCHEMA_NAME for body in reviews)
    assert "reborn" in reviews[2]["messages"][0]["content"], "the rebirth is reviewed too"


def test_the_cascade_stops_at_its_depth() -> None:
    calls = {"critic": 0}

    def critic(body: dict[str, Any]) -> str:
        calls["critic"] += 1
        return json.dumps({"verdict": "reject", "reasons": ["still wrong"]})

    result = _council(
        {"a": "A", "b": "B", "agg": "merged", "critic": critic, "phoenix": "reborn"},
        names=["a", "b"],
        aggregator="agg",
        critic="critic",
        escalate_to="phoenix",
        max_depth=2,
    )
    assert calls["critic"] == 2 and len(result.rewrites) == 1
    assert any("still rejects after 2 reviews" in n for n in result.notes)
    assert result.final is not None and result.final.text == "merged"


def test_a_critic_without_a_verdict_leaves_the_answer() -> None:
    result = _council(
        {"a": "A", "b": "B", "agg": "merged", "critic": "looks fine to me"},
        names=["a", "b"],
        aggregator="agg",
        critic="critic",
    )
    assert result.final is not None and result.final.text == "merged"
    assert result.reviews == [] and result.path[-1] == "review 1: no verdict"


def test_the_gate_sends_a_violation_back_once_and_never_loops() -> None:
    gate_calls: list[dict[str, Any]] = []

    def maat(body: dict[str, Any]) -> str:
        if _schema_name(body) == GATE_SCHEMA_NAME:
            gate_calls.append(body)
            return json.dumps({"verdict": "revise", "violations": ["no tests: add one"]})
        text = body["messages"][0]["content"]
        return "fixed with a test" if "no tests: add one" in text else "merged"

    result = _council(
        {"a": "A", "b": "B", "maat": maat},
        names=["a", "b"],
        aggregator="maat",
        gate="maat",
        invariants=("Every fix comes with a test",),
    )
    assert len(gate_calls) == 1, "the revision is not gated again"
    assert "Every fix comes with a test" in gate_calls[0]["messages"][0]["content"]
    assert result.gate is not None and result.gate.verdict == "revised"
    assert result.gate.violations == ["no tests: add one"]
    assert result.final is not None and result.final.text == "fixed with a test"

    passing = _council(
        {
            "a": "A",
            "b": "B",
            "maat": lambda b: (
                '{"verdict": "pass", "violations": []}'
                if _schema_name(b) == GATE_SCHEMA_NAME
                else "merged"
            ),
        },
        names=["a", "b"],
        aggregator="maat",
        gate="maat",
        invariants=("x",),
    )
    assert passing.gate is not None and passing.gate.verdict == "pass"
    assert passing.final is not None and passing.final.text == "merged"
    broken = _council(
        {"a": "A", "b": "B", "agg": "merged", "maat": 500},
        names=["a", "b"],
        aggregator="agg",
        gate="maat",
        invariants=("x",),
    )
    assert broken.gate is not None and broken.gate.verdict == "unchecked"
    assert broken.final is not None and broken.final.text == "merged"


def test_the_router_picks_the_members_through_a_json_schema() -> None:
    seen: list[dict[str, Any]] = []
    chosen = json.dumps({"archetypes": ["thoth", "isis", "maat"]})
    replies = {"roc": chosen, "maat": "M", "lilith": "L", "thoth": "T", "isis": "I", "x": "X"}
    result = _council(
        replies, names=["maat", "lilith", "thoth", "isis", "x"], seen=seen, router="roc"
    )
    assert result.members == ["maat", "thoth", "isis"], "in the members' order"
    assert sorted(a.archetype for a in result.answers) == ["isis", "maat", "thoth"]
    route = next(b for b in seen if b["model"] == "roc")
    schema = route["response_format"]["json_schema"]["schema"]["properties"]["archetypes"]
    assert schema["items"]["enum"] == ["maat", "lilith", "thoth", "isis", "x"]
    assert (schema["minItems"], schema["maxItems"]) == (3, 5)
    assert result.routing["router"] == "roc" and "fallback" not in result.routing


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ('{"archetypes": ["maat"]}', "not 3-4 known members"),
        ('{"archetypes": ["maat", "thoth", "nobody"]}', "not 3-4 known members"),
        ("maat, thoth", "not JSON"),
        (500, "the router failed"),
    ],
)
def test_a_bad_route_falls_back_to_every_member(reply: Any, why: str) -> None:
    replies = {"roc": reply, "maat": "M", "lilith": "L", "thoth": "T", "isis": "I"}
    result = _council(replies, names=["maat", "lilith", "thoth", "isis"], router="roc")
    assert result.members == ["maat", "lilith", "thoth", "isis"]
    assert why in result.routing["fallback"] and result.notes


def test_route_and_verdict_parsing() -> None:
    members = ["a", "b", "c", "d"]
    assert parse_route('{"archetypes": ["c", "a", "b"]}', members, 3, 4) == (["a", "b", "c"], None)
    assert parse_route('{"archetypes": ["a", "a", "b"]}', members, 3, 4)[1] is not None
    assert parse_route('noise {"archetypes": ["a","b","d"]} noise', members, 3, 4)[1] is None
    assert parse_verdict('{"verdict": "approve"}', "approve", "reject", "reasons") == (True, [])
    assert parse_verdict('{"verdict": "reject"}', "approve", "reject", "reasons") == (
        False,
        ["no reasons given"],
    )
    assert parse_verdict("APPROVE", "approve", "reject", "reasons") == (None, [])


def test_settings_from_the_chart_shape_and_their_errors() -> None:
    settings = Settings.from_dict(
        {
            "members": ["a", "b"],
            "router": {"archetype": "r", "minMembers": 1, "maxMembers": 2},
            "veto": {"critic": "c", "escalateTo": "p", "maxDepth": 2},
            "memory": {"enabled": True, "topK": 4},
            "timeoutSeconds": 60,
        }
    )
    assert settings.members == ("a", "b") and settings.max_depth == 2 and settings.top_k == 4
    assert settings.timeout_s == 60.0 and settings.roles()["escalate_to"] == "p"
    with pytest.raises(SettingsError, match=r"council.veto.maxDepth: expected int"):
        Settings.from_dict({"veto": {"maxDepth": "3"}})
    with pytest.raises(SettingsError, match=r"minMembers 4 and maxMembers 2"):
        Settings.from_dict({"router": {"minMembers": 4, "maxMembers": 2}})


def test_the_session_and_the_streamed_pieces() -> None:
    assert session_of({"metadata": {"session": "alice"}, "litellm_session_id": "x"}) == "alice"
    assert session_of({"litellm_session_id": "s-1", "metadata": {}}) == "s-1"
    assert session_of({"metadata": {"user_api_key_end_user_id": "bob"}}) == "bob"
    assert session_of(None) == "default"
    text = "a fairly long final synthesis that must stream in several pieces " * 3
    assert "".join(pieces(text)) == text and len(pieces(text)) > 3
    assert all(len(p) <= 24 for p in pieces(text))


def test_models_leaves_the_base_model_and_the_council_out() -> None:
    """The gateway lists the base model and the council too (model_info.archon_mode: base,
    council): neither is an archetype, so a council's default fan-out skips them."""
    info = {
        "data": [
            {"model_name": "qwen", "model_info": {"archon_mode": "base"}},
            {"model_name": "council", "model_info": {"archon_mode": "council"}},
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

    info_names = ["qwen", "council", "maat", "roc"]
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
    assert all("[... trimmed by the council" in t for t in texts[1:])
    assert [n.split("'")[0] for n in notes] == ["lilith", "thoth"]
    assert f"{context}-token context" in notes[0]
    message = aggregate_messages("q?", [short, *longs], context)[0]["content"]
    assert len(message) < room + 1000
    whole, none = fit_to_context("q?", [short, Answer("isis", "fine")], context)
    assert whole == ["maat", "fine"] and none == []


def test_a_trimmed_aggregation_says_so_in_the_notes() -> None:
    replies = {"a": "A" * 30000, "b": "B", "agg": lambda body: body["messages"][0]["content"]}
    result = _council(replies, names=["a", "b"], aggregator="agg")
    assert "[... trimmed by the council" in result.aggregate.text
    assert len(result.aggregate.text) < 20000
    assert result.notes and result.notes[0].startswith("a's answer was trimmed")


def test_cli_refuses_an_unknown_archetype_and_an_unreachable_gateway(
    run_cli: Callable[..., Any],
) -> None:
    from archon.simulation import SimulationConfig, serve

    done = run_cli("council", "q", "--gateway", "http://127.0.0.1:9", "--timeout", "2")
    assert done.code == 2 and "cannot reach the gateway" in done.err
    assert len(done.err.strip().splitlines()) == 1 and "Traceback" not in done.err
    with serve(SimulationConfig(model="solo")) as gateway:
        unknown = run_cli("council", "q", "--gateway", gateway.url, "--archetypes", "solo,nobody")
    assert unknown.code == 2 and "does not serve nobody" in unknown.err
    assert "use names from: solo" in unknown.err and len(unknown.err.strip().splitlines()) == 1


# --- end to end: simulations -> the real LiteLLM gateway -> archon council ---------------------


@pytest.mark.slow
def test_council_end_to_end_through_the_real_gateway(
    toolchain: dict[str, Path],
    run_cli: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """values/council.yaml as the chart renders it, the real LiteLLM proxy, a vLLM simulation
    per model and the Qdrant simulation: `model: council` deliberates inside the gateway (router,
    members, aggregation, veto cascade, gate, memory), streamed and not; `archon council` runs
    the same engine here."""
    from archon.gateway.local import local_stack
    from archon.simulation import SimulationConfig
    from archon.simulation.qdrant import serve_qdrant

    verdicts = (
        (
            "council_review",
            (
                '{"verdict": "reject", "reasons": ["no edge cases"]}',
                '{"verdict": "approve", "reasons": []}',
            ),
        ),
        ("council_gate", ('{"verdict": "pass", "violations": []}',)),
    )

    def simulation(model: str) -> SimulationConfig:
        # The 14B server answers every prompt archetype: its critic rejects once, then approves.
        return SimulationConfig(model=model, first_token_latency_s=0.02, structured_script=verdicts)

    qdrant_key = "qdrant-local-key"
    watched = tmp_path / "metrics.yaml"
    watched.write_text("metrics: {serviceMonitor: {enabled: true}}\n", encoding="utf-8")
    with (
        serve_qdrant(tmp_path / "qdrant", api_key=qdrant_key) as qdrant,
        local_stack(
            [COUNCIL, watched],
            tmp_path / "gateway",
            simulation=simulation,
            start_timeout_s=90,
            qdrant_url=qdrant.url,
            qdrant_api_key=qdrant_key,
        ) as stack,
    ):
        headers = {"Authorization": f"Bearer {stack.master_key}"}
        question = "Is sum(xs)/len(xs) safe for every list?"
        body = {
            "model": "council",
            "messages": [{"role": "user", "content": question}],
            "metadata": {"session": "alice"},
        }
        done = httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=60
        )
        assert done.status_code == 200, done.text
        reply = done.json()
        council = reply["council"]
        assert council["routing"]["router"] == "roc"
        assert council["members"] == ["maat", "lilith", "thoth"], "the router's schema-valid pick"
        assert [a["ok"] for a in council["answers"]] == [True, True, True]
        assert council["path"][-4:] == [
            "review 1: rejected by lilith",
            "revise: maat",
            "review 2: approved by lilith",
            "gate: passed by maat",
        ]
        assert council["gate"]["verdict"] == "pass"
        assert council["memory"]["stored"] >= 3 and council["session"] == "alice"
        final = reply["choices"][0]["message"]["content"]
        assert final == council["rewrites"][-1]["text"] and "simulated" in final

        again = httpx.post(
            f"{stack.url}/v1/chat/completions", json=body, headers=headers, timeout=60
        ).json()["council"]
        assert sum(again["memory"]["recalled"].values()) >= 1, "the second round recalls"

        streamed = {**body, "stream": True, "metadata": {"session": "bob"}}
        pieces_, meta = [], None
        with httpx.stream(
            "POST", f"{stack.url}/v1/chat/completions", json=streamed, headers=headers, timeout=60
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                meta = chunk.get("council") or meta
                for choice in chunk["choices"]:
                    pieces_.append((choice.get("delta") or {}).get("content") or "")
        assert meta is not None and meta["session"] == "bob"
        # The critic's script is spent: it approves the aggregate at once this time.
        assert meta["path"][-2:] == ["review 1: approved by lilith", "gate: passed by maat"]
        assert "".join(pieces_) == meta["aggregate"]["text"] and len(pieces_) > 2
        assert meta["memory"].get("recalled", {}) == {}, "bob does not see alice's memories"

        # The gateway's /metrics (the ServiceMonitor's target) counts the council's requests
        # and, with a master key, asks for it.
        assert httpx.get(f"{stack.url}/metrics/", timeout=10).status_code == 401
        metrics = httpx.get(f"{stack.url}/metrics/", headers=headers, timeout=10)
        assert metrics.status_code == 200
        assert "litellm_proxy_total_requests_metric_total{" in metrics.text
        assert 'requested_model="council"' in metrics.text

        monkeypatch.setenv("COUNCIL_KEY", stack.master_key)
        base = ("--gateway", stack.url, "--api-key-env", "COUNCIL_KEY", "--timeout", "20")
        server_side = run_cli(
            "council", question, *base, "--server-side", "--session", "carol", "--output", "json"
        )
        assert server_side.code == 0, server_side.err
        server_council = json.loads(server_side.out)["council"]
        assert server_council["gate"]["verdict"] == "pass"
        assert server_council["session"] == "carol"

        # Errors keep their status and carry no traceback (LiteLLM's own exception classes).
        empty = {**body, "messages": [{"role": "user", "content": "  "}]}
        refused = httpx.post(
            f"{stack.url}/v1/chat/completions", json=empty, headers=headers, timeout=60
        )
        assert refused.status_code == 400 and "Traceback" not in refused.text

        local = run_cli(
            "council",
            question,
            *base,
            "-f",
            str(COUNCIL),
            "--memory-path",
            str(tmp_path / "local-memory"),
            "--output",
            "json",
        )
        assert local.code == 0, local.err
        result = json.loads(local.out)
        assert result["members"] == ["maat", "lilith", "thoth"]
        assert result["gate"]["verdict"] == "pass" and result["memory"]["stored"] >= 3

        plain = run_cli("council", "Explain GIL", *base, "--archetypes", "thoth,isis", "--stream")
        assert plain.code == 0, plain.err
        assert "thoth" in plain.err and "first token" in plain.err
        assert "== aggregating: maat" in plain.out and "simulated" in plain.out

        monkeypatch.setenv("COUNCIL_KEY", "sk-wrong")
        refused = run_cli("council", "q", *base)
        assert refused.code == 1 and "refused the API key" in refused.err
        assert len(refused.err.strip().splitlines()) == 1 and "Traceback" not in refused.err


# --- the memory loop, for real: qdrant-client local mode and the shipped embedding model -------

KV_QUESTION = "How much GPU memory does the KV cache need for the 14B model at 8192 tokens?"
KV_FOLLOW_UP = "How big is the KV cache of the 14B model at 6144 tokens?"
UNRELATED = "What is a good recipe for banana bread?"
MEMORY_NOTE = "Earlier council rounds in this session"


def _memory_round(
    path: Path, question: str, session: str, seen: list[dict[str, Any]]
) -> CouncilResult:
    from archon.council.memory import QdrantClientMemory, StaticEmbedder

    async def go() -> CouncilResult:
        memory = QdrantClientMemory(StaticEmbedder(), path=path)
        replies = {
            "thoth": "The KV cache of the 14B model takes 192 KiB per token, so 8192 tokens "
            "need 1.5 GiB of GPU memory.",
            "isis": "Lower max-model-len to fit the KV cache in GPU memory.",
        }
        transport = _transport({}, replies, seen)
        try:
            async with GatewayClient("http://gw", "k", timeout_s=5, transport=transport) as client:
                settings = Settings(members=("thoth", "isis"), memory=True, top_k=2)
                council = Council(client, settings, memory=memory)
                return await council.deliberate(question, session=session)
        finally:
            await memory.close()

    return asyncio.run(go())


def _prompts(seen: list[dict[str, Any]]) -> list[str]:
    return [str(body["messages"][-1]["content"]) for body in seen]


def test_a_round_remembers_and_the_next_related_round_recalls(tmp_path: Path) -> None:
    """Stored answers come back into the prompts of a related question in the same session,
    not of an unrelated one nor of another session, and survive closing the memory."""
    path = tmp_path / "memory"
    first: list[dict[str, Any]] = []
    stored = _memory_round(path, KV_QUESTION, "alice", first)
    assert stored.memory["stored"] >= 2 and not any(MEMORY_NOTE in p for p in _prompts(first))

    related: list[dict[str, Any]] = []
    again = _memory_round(path, KV_FOLLOW_UP, "alice", related)
    thoth = next(
        p for b, p in zip(related, _prompts(related), strict=True) if b["model"] == "thoth"
    )
    assert MEMORY_NOTE in thoth and "192 KiB per token" in thoth
    assert again.memory["recalled"].get("thoth", 0) >= 1

    other_session: list[dict[str, Any]] = []
    _memory_round(path, KV_FOLLOW_UP, "bob", other_session)
    assert not any(MEMORY_NOTE in p for p in _prompts(other_session))

    unrelated: list[dict[str, Any]] = []
    _memory_round(path, UNRELATED, "alice", unrelated)
    assert not any(MEMORY_NOTE in p for p in _prompts(unrelated))


def test_an_unreachable_memory_does_not_stop_the_council(tmp_path: Path) -> None:
    from archon.council.memory import QdrantClientMemory, StaticEmbedder

    async def go() -> CouncilResult:
        memory = QdrantClientMemory(StaticEmbedder(), url="http://127.0.0.1:9", timeout=1)
        transport = _transport({}, {"a": "A"})
        try:
            async with GatewayClient("http://gw", "k", timeout_s=5, transport=transport) as client:
                council = Council(client, Settings(members=("a",), memory=True), memory=memory)
                return await council.deliberate("q?")
        finally:
            await memory.close()

    result = asyncio.run(go())
    assert result.final is not None and result.final.text == "A"
    assert "error" in result.memory and any("memory unavailable" in n for n in result.notes)


def test_the_cli_keeps_the_static_models_vectors_apart_on_a_server(
    run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    """`--qdrant-url` without an embedding archetype: the static model's 64-dimension vectors
    go to a collection of their own, so a cluster's memory of another dimension is untouched."""
    from qdrant_client import QdrantClient

    from archon.simulation import SimulationConfig, serve
    from archon.simulation.qdrant import serve_qdrant

    with serve(SimulationConfig(model="solo")) as gateway, serve_qdrant(tmp_path / "q") as qdrant:
        done = run_cli(
            "council",
            "How big is the KV cache?",
            "--gateway",
            gateway.url,
            "--memory",
            "on",
            "--qdrant-url",
            qdrant.url,
            "--output",
            "json",
        )
        assert done.code == 0, done.err
        assert json.loads(done.out)["memory"]["stored"] >= 1
        client = QdrantClient(url=qdrant.url, check_compatibility=False)
        try:
            assert client.collection_exists("archon-council-static64")
            assert not client.collection_exists("archon-council")
        finally:
            client.close()


# --- review findings kept as tests ------------------------------------------------------------


def test_a_time_limit_keeps_the_best_answer_so_far() -> None:
    """The council's limit hits during the review: the aggregate stands and says so."""
    result = _council(
        {"a": "A", "b": "B", "agg": "merged", "critic": '{"verdict": "approve", "reasons": []}'},
        {"critic": 1.5},
        names=["a", "b"],
        aggregator="agg",
        critic="critic",
        timeout_s=0.8,
    )
    assert result.timed_out and result.path[-1] == "timeout"
    assert result.final is not None and result.final.text == "merged"
    assert any("the answer so far stands (agg)" in n for n in result.notes)


def test_the_gate_sends_phoenixs_rewrite_back_to_phoenix() -> None:
    verdicts = iter(["reject", "reject", "approve"])

    def critic(body: dict[str, Any]) -> str:
        return json.dumps({"verdict": next(verdicts), "reasons": ["flaw"]})

    def maat(body: dict[str, Any]) -> str:
        if _schema_name(body) == GATE_SCHEMA_NAME:
            return json.dumps({"verdict": "revise", "violations": ["no test"]})
        return "merged"

    def phoenix(body: dict[str, Any]) -> str:
        return "fixed" if "no test" in body["messages"][0]["content"] else "reborn"

    result = _council(
        {"a": "A", "b": "B", "maat": maat, "critic": critic, "phoenix": phoenix},
        names=["a", "b"],
        aggregator="maat",
        critic="critic",
        escalate_to="phoenix",
        gate="maat",
        invariants=("Every fix has a test",),
    )
    assert result.path[-2:] == ["gate: 1 violation(s), sent back to phoenix", "revise: phoenix"]
    assert result.final is not None and result.final.archetype == "phoenix"
    assert result.final.text == "fixed"


def test_a_gate_without_invariants_is_skipped_and_says_so() -> None:
    result = _council({"a": "A"}, names=["a"], gate="maat")
    assert result.path[-1] == "gate: skipped, no invariants"


def _one_answer(handler: Callable[[httpx.Request], httpx.Response], stream: bool) -> Answer:
    async def go() -> Answer:
        transport = httpx.MockTransport(handler)
        async with GatewayClient("http://gw", "k", timeout_s=2, transport=transport) as client:
            return await client.chat("a", [{"role": "user", "content": "q"}], stream=stream)

    return asyncio.run(go())


def test_a_stream_cut_by_an_error_event_is_an_error_not_an_answer() -> None:
    events = (
        'data: {"choices": [{"delta": {"content": "partial "}}]}\n\n'
        'data: {"error": {"message": "upstream died", "code": "500"}}\n\n'
    )
    answer = _one_answer(lambda r: httpx.Response(200, text=events), stream=True)
    assert not answer.ok and "upstream died" in str(answer.error)


@pytest.mark.parametrize(
    ("body", "stream"),
    [
        ({"choices": [{"message": ["not", "an", "object"]}]}, False),
        ({"choices": []}, False),
        (None, True),
    ],
)
def test_a_malformed_reply_is_that_archetypes_error(body: Any, stream: bool) -> None:
    if stream:
        answer = _one_answer(lambda r: httpx.Response(200, text="data: [1, 2]\n\n"), stream=True)
    else:
        answer = _one_answer(lambda r: httpx.Response(200, json=body), stream=False)
    assert not answer.ok and answer.error is not None and "unreadable reply" in answer.error


def test_the_handler_answers_with_litellms_statuses() -> None:
    """The proxy passes LiteLLM's own exceptions through with their status and message; any
    other exception becomes a 500 carrying a traceback."""
    import litellm

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"error": {"message": "down"}})

    handler = engine.CouncilHandler(Settings(members=("a",)))
    handler._client = GatewayClient(
        "http://gw", "k", timeout_s=2, transport=httpx.MockTransport(refuse)
    )
    messages = [{"role": "user", "content": "q?"}]
    with pytest.raises(litellm.ServiceUnavailableError) as failed:
        asyncio.run(handler._deliberate(messages, {}))
    assert failed.value.status_code == 503 and "no council member answered" in str(failed.value)
    with pytest.raises(litellm.BadRequestError) as empty:
        asyncio.run(handler._deliberate([{"role": "user", "content": "  "}], {}))
    assert empty.value.status_code == 400 and "Traceback" not in str(empty.value)


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--qdrant-url", "nope"), "--qdrant-url"),
        (("--server-side", "--router", "roc"), "--server-side"),
        (("--max-depth", "0"), "--max-depth"),
    ],
)
def test_cli_refuses_bad_council_flags_in_one_line(
    run_cli: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    says: str,
) -> None:
    try:
        done = run_cli("council", "q", "--gateway", "http://127.0.0.1:9", *flags)
        code, err = done.code, done.err
    except SystemExit as exc:  # refused by argparse itself
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and says in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
