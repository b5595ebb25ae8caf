"""The vLLM simulation over real HTTP on 127.0.0.1 (ephemeral ports)."""

from __future__ import annotations

import base64
import json
import struct
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from archon.simulation import SimulationConfig, serve


def _get(url: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}, dict(response.headers)


def _post(url: str, body: dict[str, Any]) -> urllib.request.Request:
    return urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


CHAT = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 9}


def test_serves_on_loopback_and_says_it_is_a_simulation() -> None:
    with serve() as sim:
        assert sim.url.startswith("http://127.0.0.1:")
        assert sim.port > 0
        status, _, headers = _get(f"{sim.url}/health")
        assert status == 200
        assert headers["x-archon-simulation"] == "true"


def test_models_lists_the_served_model() -> None:
    with serve(SimulationConfig(model="m1", max_model_len=4096)) as sim:
        status, body, _ = _get(f"{sim.url}/v1/models")
    assert status == 200
    assert body["object"] == "list"
    assert [(m["id"], m["max_model_len"]) for m in body["data"]] == [("m1", 4096)]


def test_chat_completion_with_usage() -> None:
    with (
        serve() as sim,
        urllib.request.urlopen(
            _post(f"{sim.url}/v1/chat/completions", CHAT), timeout=5
        ) as response,
    ):
        body = json.loads(response.read())
    assert body["object"] == "chat.completion"
    text = body["choices"][0]["message"]["content"]
    assert text.startswith("[simulated vLLM reply")
    assert body["usage"]["completion_tokens"] == len(text.split()) == 9
    assert body["usage"]["prompt_tokens"] == 2


def test_streaming_sends_sse_chunks_and_done() -> None:
    with (
        serve() as sim,
        urllib.request.urlopen(
            _post(f"{sim.url}/v1/chat/completions", CHAT | {"stream": True}), timeout=5
        ) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        events = [ln for ln in response.read().decode().split("\n\n") if ln]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert len(text.split()) == 9


def test_latency_knobs_delay_the_reply() -> None:
    config = SimulationConfig(first_token_latency_s=0.2, token_latency_s=0.01)
    with serve(config) as sim:
        start = time.perf_counter()
        with urllib.request.urlopen(_post(f"{sim.url}/v1/chat/completions", CHAT), timeout=5):
            pass
        elapsed = time.perf_counter() - start
    assert 0.25 <= elapsed < 2.0  # 0.2 s + 8 x 0.01 s


def test_failure_rate_one_always_fails_with_vllm_error_shape() -> None:
    with serve(SimulationConfig(failure_rate=1.0)) as sim:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(_post(f"{sim.url}/v1/chat/completions", CHAT), timeout=5)
        assert info.value.code == 500
        assert json.loads(info.value.read())["object"] == "error"


def test_unhealthy_and_unknown_model_and_bad_body() -> None:
    with serve(SimulationConfig(unhealthy=True, model="m1")) as sim:
        with pytest.raises(urllib.error.HTTPError) as health:
            urllib.request.urlopen(f"{sim.url}/health", timeout=5)
        assert health.value.code == 503
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(
                _post(f"{sim.url}/v1/chat/completions", CHAT | {"model": "other"}), timeout=5
            )
        assert unknown.value.code == 404
        bad = urllib.request.Request(
            f"{sim.url}/v1/chat/completions", data=b"not json", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as invalid:
            urllib.request.urlopen(bad, timeout=5)
        assert invalid.value.code == 400


def test_embeddings_come_from_the_static_model_in_input_order() -> None:
    static_model = pytest.importorskip("static_model")
    texts = ["the KV cache of a 14B model", "banana bread"]
    body = {"model": "embed", "input": texts}
    with serve(SimulationConfig(model="embed")) as sim:
        with urllib.request.urlopen(_post(f"{sim.url}/v1/embeddings", body), timeout=5) as r:
            floats = json.loads(r.read())
        packed = body | {"encoding_format": "base64"}
        with urllib.request.urlopen(_post(f"{sim.url}/v1/embeddings", packed), timeout=5) as r:
            b64 = json.loads(r.read())
        with pytest.raises(urllib.error.HTTPError) as wrong_model:
            urllib.request.urlopen(
                _post(f"{sim.url}/v1/embeddings", body | {"model": "other"}), timeout=5
            )
        with pytest.raises(urllib.error.HTTPError) as no_input:
            urllib.request.urlopen(
                _post(f"{sim.url}/v1/embeddings", {"model": "embed", "input": []}), timeout=5
            )
    assert floats["object"] == "list"
    assert floats["model"] == "embed"
    assert [d["index"] for d in floats["data"]] == [0, 1]
    vectors = [d["embedding"] for d in floats["data"]]
    assert vectors == static_model.get_embeddings(texts)
    assert all(len(v) == 64 and abs(sum(x * x for x in v) - 1) < 1e-3 for v in vectors)
    unpacked = [list(struct.unpack("<64f", base64.b64decode(d["embedding"]))) for d in b64["data"]]
    assert all(
        abs(a - b) < 1e-6
        for u, v in zip(unpacked, vectors, strict=True)
        for a, b in zip(u, v, strict=True)
    )
    assert floats["usage"]["prompt_tokens"] == 9
    assert wrong_model.value.code == 404
    assert no_input.value.code == 400


def _chat(url: str, body: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return str(json.load(response)["choices"][0]["message"]["content"])


def test_structured_output_is_valid_under_the_schema_or_scripted() -> None:
    """Guided decoding's contract: the reply parses under the requested schema. A script names
    what the "model" decides, per schema name, in order; the last reply repeats."""
    import jsonschema

    route = {
        "type": "object",
        "properties": {
            "archetypes": {
                "type": "array",
                "items": {"type": "string", "enum": ["maat", "lilith", "thoth", "isis"]},
                "minItems": 3,
                "maxItems": 4,
                "uniqueItems": True,
            }
        },
        "required": ["archetypes"],
    }
    script = (("review", ('{"verdict": "reject"}', '{"verdict": "approve"}')),)
    with serve(SimulationConfig(structured_script=script)) as server:
        url = server.url
        messages = [{"role": "user", "content": "route this"}]
        as_openai = {"type": "json_schema", "json_schema": {"name": "route", "schema": route}}
        reply = json.loads(_chat(url, {"messages": messages, "response_format": as_openai}))
        jsonschema.validate(reply, route)
        assert reply == {"archetypes": ["maat", "lilith", "thoth"]}
        as_vllm = json.loads(
            _chat(url, {"messages": messages, "structured_outputs": {"json": route}})
        )
        jsonschema.validate(as_vllm, route)
        review = {"type": "json_schema", "json_schema": {"name": "review", "schema": {}}}
        said = [
            json.loads(_chat(url, {"messages": messages, "response_format": review}))["verdict"]
            for _ in range(3)
        ]
        assert said == ["reject", "approve", "approve"]
        assert "simulated" in _chat(url, {"messages": messages}), "free text stays free"
