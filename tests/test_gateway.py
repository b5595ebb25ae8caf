"""The gateway hook (unit), the archetype lint checks, the config helpers, and the chart's
gateway config loaded by the real LiteLLM proxy on loopback."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from archon.gateway import archetype_problems
from archon.gateway.config import (
    copy_hook,
    gateway_files,
    load_hook,
    localize,
    upstream_models,
    write_config_dir,
)
from archon.paths import gateway_hook

REPO_ROOT = Path(__file__).resolve().parent.parent
CHART = REPO_ROOT / "charts" / "archon"
SCENARIO = CHART / "ci" / "archetypes-values.yaml"

HOOK = load_hook()
ArchonArchetypes = HOOK.ArchonArchetypes
apply_archetype = HOOK.apply_archetype
load_archetypes = HOOK.load_archetypes

SCHEMA = {"type": "object", "properties": {"safe": {"type": "boolean"}}, "required": ["safe"]}


# --- the hook -------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_gateway_configmap_carries_exactly_the_packaged_hook(
    toolchain: dict[str, Path], tmp_path: Path
) -> None:
    from archon.render import render_chart

    assert gateway_hook().samefile(CHART / "files" / "archon_hook.py"), "one source: the chart"
    shipped = gateway_files(render_chart([SCENARIO]).objects)["archon_hook.py"]
    packaged = gateway_hook().read_text(encoding="utf-8")
    # The ConfigMap's block scalar drops the final newline; nothing else may differ.
    assert shipped.rstrip("\n") == packaged.rstrip("\n")
    assert "proxy_handler_instance = ArchonArchetypes()" in shipped
    copy_hook(tmp_path)
    assert (tmp_path / "archon_hook.py").read_text(encoding="utf-8") == packaged


def test_system_prompt_goes_first_and_the_clients_own_stays() -> None:
    data: dict[str, Any] = {
        "model": "maat",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q"}],
    }
    out = apply_archetype(data, {"systemPrompt": "You are Ma'at."})
    assert [m["content"] for m in out["messages"]] == ["You are Ma'at.", "be brief", "q"]
    assert data["messages"][0]["content"] == "be brief", "the request is not changed in place"


def test_guided_decoding_becomes_vllm_structured_outputs() -> None:
    base = {"model": "v", "messages": [{"role": "user", "content": "q"}]}
    json_out = apply_archetype(base, {"guidedDecoding": {"json": SCHEMA}})
    assert json_out["extra_body"] == {"structured_outputs": {"json": SCHEMA}}
    regex_out = apply_archetype(base, {"guidedDecoding": {"regex": "(a|b)"}})
    assert regex_out["extra_body"] == {"structured_outputs": {"regex": "(a|b)"}}


def test_a_clients_own_structured_output_wins() -> None:
    data = {"model": "v", "messages": [], "response_format": {"type": "json_object"}}
    assert "extra_body" not in apply_archetype(data, {"guidedDecoding": {"regex": "x"}})
    own = {"model": "v", "messages": [], "extra_body": {"structured_outputs": {"regex": "y"}}}
    out = apply_archetype(own, {"guidedDecoding": {"regex": "x"}})
    assert out["extra_body"]["structured_outputs"] == {"regex": "y"}


def test_the_callback_changes_only_archetype_chat_calls(tmp_path: Path) -> None:
    table = tmp_path / "archetypes.json"
    table.write_text(json.dumps({"maat": {"systemPrompt": "judge"}}))
    hook = ArchonArchetypes(load_archetypes(table))
    chat = {"model": "maat", "messages": [{"role": "user", "content": "q"}]}
    out = asyncio.run(hook.async_pre_call_hook(None, None, chat, "completion"))
    assert out["messages"][0] == {"role": "system", "content": "judge"}
    other = {"model": "base", "messages": [{"role": "user", "content": "q"}]}
    assert asyncio.run(hook.async_pre_call_hook(None, None, other, "completion")) is other
    embed = {"model": "maat", "input": "text"}
    assert asyncio.run(hook.async_pre_call_hook(None, None, embed, "embeddings")) is embed
    assert load_archetypes(tmp_path / "missing.json") == {}


# --- lint checks JSON schema cannot express ---------------------------------------------------


def _values(*archetypes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": {"servedModelName": "base"}, "archetypes": list(archetypes), **extra}


def test_archetype_problems_find_duplicates_shadowing_and_missing_gpus() -> None:
    a = {"name": "maat", "mode": "prompt"}
    dup = archetype_problems(_values(a, dict(a)), source="v.yaml")
    assert [p.key for p in dup] == ["archetypes[1].name"]
    assert "archetypes[0]" in dup[0].line() and dup[0].line().startswith("v.yaml: ")
    shadow = archetype_problems(_values({"name": "base", "mode": "prompt"}))
    assert "base model" in shadow[0].message
    off = archetype_problems(_values(a, gateway={"enabled": False}))
    assert [p.key for p in off] == ["gateway.enabled"]
    instance = {"name": "roc", "mode": "instance", "instance": {"model": {"name": "m"}}}
    gpus = archetype_problems(_values(instance, gpu={"count": 1, "nodeCapacity": 1}))
    assert [p.key for p in gpus] == ["gpu.nodeCapacity"] and "2 GPUs" in gpus[0].message
    disabled = dict(instance, enabled=False)
    assert archetype_problems(_values(disabled, gpu={"nodeCapacity": 1})) == []


def test_the_shipped_archetype_values_have_no_problems() -> None:
    for file in (REPO_ROOT / "values" / "council.yaml", SCENARIO):
        assert archetype_problems(yaml.safe_load(file.read_text()), source=str(file)) == []


# --- config helpers -------------------------------------------------------------------------


def test_localize_points_every_entry_at_loopback_and_sets_the_key() -> None:
    config: dict[str, Any] = {
        "model_list": [
            {
                "model_name": "maat",
                "litellm_params": {
                    "model": "openai/base",
                    "api_base": "http://archon-server:8000/v1",
                    "api_key": "os.environ/ARCHON_UPSTREAM_API_KEY",
                },
            }
        ],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }
    assert upstream_models(config) == {"maat": "base"}
    local = localize(config, {"base": "http://127.0.0.1:9"}, master_key="sk-x")
    params = local["model_list"][0]["litellm_params"]
    assert params["api_base"] == "http://127.0.0.1:9/v1" and params["api_key"] == "no-key"
    assert local["general_settings"] == {"master_key": "sk-x"}
    assert config["model_list"][0]["litellm_params"]["api_base"].startswith("http://archon")


# --- the real LiteLLM proxy with the rendered config ------------------------------------------


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.bodies: list[dict[str, Any]] = []


class _RecordingHandler(BaseHTTPRequestHandler):
    """An OpenAI-shaped upstream that records what the gateway forwards (any model name)."""

    server: _Recorder
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.bodies.append(body)
        reply = json.dumps(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


@pytest.fixture
def recorder() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.slow
def test_real_litellm_loads_the_rendered_config_and_applies_the_archetypes(
    toolchain: dict[str, Path], recorder: _Recorder, tmp_path: Path
) -> None:
    from archon.gateway.proxy import run_proxy
    from archon.render import render_chart

    files = gateway_files(render_chart([SCENARIO]).objects)
    config = yaml.safe_load(files["config.yaml"])
    url = f"http://127.0.0.1:{recorder.server_address[1]}"
    upstreams = dict.fromkeys(upstream_models(config).values(), url)
    path = write_config_dir(files, tmp_path, localize(config, upstreams, master_key="sk-test"))
    key = {"Authorization": "Bearer sk-test"}
    with run_proxy(path, timeout_s=60) as proxy, httpx.Client(base_url=proxy.url) as http:
        listed = {m["id"] for m in http.get("/v1/models", headers=key).json()["data"]}
        assert listed == {"qwen2.5-coder-14b", "maat", "verdict", "lilith", "thoth", "roc"}, (
            "the base model and the enabled archetypes (phoenix is disabled)"
        )

        def chat(model: str, **extra: Any) -> dict[str, Any]:
            body = {"model": model, "messages": [{"role": "user", "content": "q"}], **extra}
            reply = http.post("/v1/chat/completions", json=body, headers=key, timeout=30)
            assert reply.status_code == 200, reply.text
            return recorder.bodies[-1]

        base = chat("qwen2.5-coder-14b")
        assert base["model"] == "qwen2.5-coder-14b" and base["messages"][0]["role"] == "user", (
            "the base model gets no system prompt"
        )
        maat = chat("maat")
        assert maat["model"] == "qwen2.5-coder-14b"
        assert (
            maat["messages"][0]["role"] == "system" and "verdict" in maat["messages"][0]["content"]
        )
        assert maat["temperature"] == 0.2 and maat["max_tokens"] == 1024
        assert chat("maat", temperature=0.9)["temperature"] == 0.9, "the client's value wins"
        verdict = chat("verdict")
        assert verdict["structured_outputs"]["json"]["required"] == ["safe", "reason"]
        assert chat("lilith")["model"] == "lilith", "a LoRA archetype is its adapter's name"
        roc = chat("roc")
        assert roc["model"] == "roc" and roc["structured_outputs"] == {
            "regex": "^(maat|lilith|thoth)$"
        }
        refused = http.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
        assert refused.status_code in (400, 401, 403)
